"""Checkpoints: a Hugging Face model folder (bf16 safetensors, the starting model's processor files) and trainer state.

Layout of `OUT/checkpoints/step-000020/`: the model's `config.json` and `model.safetensors` (bf16 by default, the
dtype the paper's models ship in, declared in `config.json`), the starting model's processor, tokenizer and chat
template files copied byte for byte (`processor_files`), and its `generation_config.json`; `trainer_state.json`
(step, data position, stage-scheduler EMAs, RAE baselines: readable) and `trainer_state.pt` (optimizer and LR
schedule, and the full-precision weights when the safetensors are rounded, so that resuming is exact). There is
no RNG state to keep: the trainer derives every step's sampling seed from (run seed, step, process), so a resumed
step samples exactly what the uninterrupted one did. A checkpoint is written under a temporary name and renamed
when complete, so a crash never leaves a plausible half-written one.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.utils import GENERATION_CONFIG_NAME

from datagen.errors import ConfigError
from training.model import blank_generation_config
from training.processor_files import copy_processor_files

RUN_FILE = "run.json"
"""The run record in a run folder: model, data and recipe, which a resumed run must match."""
CHECKPOINTS = "checkpoints"
STATE_JSON = "trainer_state.json"
STATE_TORCH = "trainer_state.pt"
PREFIX = "step-"
WEIGHTS_DTYPE = torch.bfloat16
"""The dtype of a checkpoint's `model.safetensors`, what evaluators load."""
MASTER_WEIGHTS = "model"
"""Key of the full-precision weights in `trainer_state.pt`, present when the safetensors are rounded."""


@dataclass(frozen=True)
class TrainerState:
    """What a resumed run needs besides the weights, optimizer and LR schedule."""

    step: int
    """Steps completed."""
    data_position: int
    """Pair records consumed from the seeded data stream."""
    scheduler: dict[str, Any]
    """`StageScheduler.state_dict()`: stage, dwell, EMAs."""
    baselines: dict[str, Any]
    """`RoleBaselines.state_dict()`: the RAE baselines."""
    recipe: dict[str, Any]
    """The recipe the run was started with."""


def checkpoint_dir(out: Path, step: int) -> Path:
    """Where the checkpoint of `step` lives."""
    return out / CHECKPOINTS / f"{PREFIX}{step:06d}"


def list_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints under `out`, oldest first."""
    folder = out / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.name.startswith(PREFIX) and (path / STATE_JSON).is_file()]
    return sorted(found, key=lambda path: int(path.name[len(PREFIX) :]))


def latest_checkpoint(out: Path) -> Path:
    """The newest complete checkpoint; ConfigError when there is none to resume from."""
    found = list_checkpoints(out)
    if not found:
        raise ConfigError(f"--resume: {out} has no checkpoint to resume from (expected {out / CHECKPOINTS}/step-*)")
    return found[-1]


def save_checkpoint(
    out: Path,
    *,
    model: torch.nn.Module,
    processor_files: Path,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    state: TrainerState,
    keep: int,
    weights_dtype: torch.dtype = WEIGHTS_DTYPE,
) -> Path:
    """Write the checkpoint of `state.step` atomically and drop all but the newest `keep` (0 keeps all).

    `processor_files` is the starting model's folder (or a checkpoint of it) whose processor files are copied.
    """
    final = checkpoint_dir(out, state.step)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    full = model.state_dict()
    weights = {name: _cast(tensor, weights_dtype) for name, tensor in full.items()}
    with blank_generation_config(model) as generation_config:
        model.save_pretrained(partial, state_dict=weights, safe_serialization=True)
    save_config(model.config, partial, weights_dtype)
    generation_config.to_json_file(partial / GENERATION_CONFIG_NAME)
    copy_processor_files(processor_files, partial)
    torch_state = {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()}
    if any(weights[name].dtype != tensor.dtype for name, tensor in full.items()):
        torch_state[MASTER_WEIGHTS] = full
    torch.save(torch_state, partial / STATE_TORCH)
    (partial / STATE_JSON).write_text(json.dumps(state.__dict__, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    if keep:
        for old in list_checkpoints(out)[:-keep]:
            shutil.rmtree(old)
    return final


def _cast(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Floating-point tensors in `dtype`; integer buffers as they are."""
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def save_config(config: Any, folder: Path, dtype: torch.dtype) -> None:
    """Write `config.json` declaring `dtype` (its text and vision sub-configs too), the dtype the weights are saved in.

    `save_pretrained` declares the dtype of the model's parameters (fp32 master weights), so evaluators loading with
    `dtype="auto"` would upcast the bf16 weights; a copy of the config, written after it, says what the file holds.
    """
    declared = copy.deepcopy(config)
    for part in [declared, *(getattr(declared, key, None) for key in getattr(declared, "sub_configs", {}))]:
        if part is not None:
            part.dtype = dtype
    declared.save_pretrained(folder)


def load_trainer_state(folder: Path) -> tuple[TrainerState, dict[str, Any]]:
    """The readable state and the torch state (optimizer, LR schedule) of a checkpoint folder."""
    state = TrainerState(**json.loads((folder / STATE_JSON).read_text()))
    torch_state = torch.load(folder / STATE_TORCH, weights_only=False)
    return state, torch_state
