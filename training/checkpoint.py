"""Checkpoints: a Hugging Face model folder (loadable by VLMEvalKit and lmms-eval) plus the exact training state.

Layout of `OUT/checkpoints/step-000020/`:
- the model folder: `config.json` (declaring the weights' dtype), `model.safetensors` (the full weights in
  `checkpoint_dtype`, bf16 by default, adapters merged under LoRA), and the starting model's processor, tokenizer,
  chat template and `generation_config.json` files, copied byte for byte (`processor_files.py`), so that evaluators
  load a checkpoint wherever they load the starting model, at its resolution;
- `trainer_state.json`: step, data position, stage scheduler (stage, dwell, EMAs), RAE baselines, LR schedule,
  optimizer steps taken, the recipe: readable;
- `training_state/`: the trainable weights in fp32 and the AdamW state, written with `torch.distributed.checkpoint`
  (one file per process, each holding its own shard; loadable by a different number of processes).

There is no RNG state to keep: the trainer derives every step's sampling seed from (run seed, step, process),
so a resumed step samples exactly what the uninterrupted one did. All processes must see the same `OUT` (one
machine, or a shared filesystem). A checkpoint is written under a temporary name and renamed when complete, so
a crash never leaves a plausible half-written one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.utils import GENERATION_CONFIG_NAME

from datagen.errors import ConfigError
from datagen.files import atomic_write_text, replace_folder, staging_folder
from training.distributed import Processes
from training.model import blank_generation_config
from training.processor_files import copy_processor_files

RUN_FILE = "run.json"
"""The run record in a run folder: model, data and recipe, which a resumed run must match."""
CHECKPOINTS = "checkpoints"
STATE_JSON = "trainer_state.json"
TRAINING_STATE = "training_state"
PREFIX = "step-"
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
"""`checkpoint_dtype` values: the dtype of a checkpoint's `model.safetensors`, what evaluators load."""


@dataclass(frozen=True)
class TrainerState:
    """What a resumed run needs besides the weights and the optimizer state."""

    step: int
    """Steps completed."""
    data_position: int
    """Pair records consumed from the seeded data stream."""
    scheduler: dict[str, Any]
    """`StageScheduler.state_dict()`: stage, dwell, EMAs."""
    baselines: dict[str, Any]
    """`RoleBaselines.state_dict()`: the RAE baselines."""
    lr_scheduler: dict[str, Any]
    """The LR schedule's `state_dict()`."""
    optimizer_steps: int
    """Optimizer steps taken (one per training step)."""
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
    state: TrainerState,
    write_model_folder: Callable[[Path], None],
    training_state: dict[str, Any],
    processes: Processes,
    keep: int,
) -> Path:
    """Write the checkpoint of `state.step` atomically (every process calls this) and keep the newest `keep`.

    `write_model_folder(folder)` runs on the main process only; `training_state` is each process's own share.
    """
    import torch.distributed.checkpoint as dcp

    final = checkpoint_dir(out, state.step)
    partial = staging_folder(final)
    if processes.is_main:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write_model_folder(partial)
    processes.barrier()
    with _single_process_quietly():
        dcp.save(training_state, checkpoint_id=partial / TRAINING_STATE, no_dist=not processes.distributed)
    processes.barrier()
    if processes.is_main:
        atomic_write_text(partial / STATE_JSON, json.dumps(state.__dict__, indent=2) + "\n")
        replace_folder(partial, final)
        if keep:
            for old in list_checkpoints(out)[:-keep]:
                shutil.rmtree(old)
    processes.barrier()
    return final


def write_model_folder(
    folder: Path, *, model: torch.nn.Module, state_dict: dict[str, torch.Tensor], processor_files: Path, dtype: str
) -> None:
    """A Hugging Face model folder from a full state dict, its weights cast to `dtype` (`bf16` or `fp32`).

    `processor_files` is the starting model's folder, whose processor files are copied. Its `generation_config.json`
    is written verbatim: `save_pretrained` refuses one that fails strict validation (e.g. `top_k` without
    `do_sample`), which some published checkpoints ship.
    """
    weights = {key: _cast(value, DTYPES[dtype]) for key, value in state_dict.items()}
    with blank_generation_config(model) as generation_config:
        model.save_pretrained(folder, state_dict=weights, safe_serialization=True)
    save_config(model.config, folder, DTYPES[dtype])
    generation_config.to_json_file(folder / GENERATION_CONFIG_NAME)
    copy_processor_files(processor_files, folder)


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


def load_trainer_state(folder: Path) -> TrainerState:
    """The readable state of a checkpoint folder."""
    return TrainerState(**json.loads((folder / STATE_JSON).read_text()))


def load_training_state(folder: Path, template: dict[str, Any]) -> None:
    """Fill `template` (this process's `training_state` layout) in place from a checkpoint's saved shards."""
    import torch.distributed.checkpoint as dcp

    with _single_process_quietly():
        dcp.load(template, checkpoint_id=folder / TRAINING_STATE, no_dist=not torch.distributed.is_initialized())


@contextlib.contextmanager
def _single_process_quietly() -> Iterator[None]:
    """DCP warns that it "assumes" a single process even when told so (`no_dist`); one process is meant."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield
