"""Checkpoints: a Hugging Face model folder (safetensors + processor, loadable by VLMEvalKit) plus trainer state.

Layout of `OUT/checkpoints/step-000020/`: the model's `config.json`, `model.safetensors`, processor and
tokenizer files; `trainer_state.json` (step, data position, stage-scheduler EMAs, RAE baselines: readable) and
`trainer_state.pt` (optimizer and LR schedule). There is no RNG state to keep: the trainer derives every step's
sampling seed from (run seed, step, process), so a resumed step samples exactly what the uninterrupted one did.
A checkpoint is written under a temporary name and renamed when complete, so a crash never leaves a plausible
half-written one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers.utils import GENERATION_CONFIG_NAME

from datagen.errors import ConfigError
from training.model import blank_generation_config

RUN_FILE = "run.json"
"""The run record in a run folder: model, data and recipe, which a resumed run must match."""
CHECKPOINTS = "checkpoints"
STATE_JSON = "trainer_state.json"
STATE_TORCH = "trainer_state.pt"
PREFIX = "step-"


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
    processor: Any,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    state: TrainerState,
    keep: int,
) -> Path:
    """Write the checkpoint of `state.step` atomically and drop all but the newest `keep` (0 keeps all)."""
    final = checkpoint_dir(out, state.step)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with blank_generation_config(model) as generation_config:
        model.save_pretrained(partial, safe_serialization=True)
    generation_config.to_json_file(partial / GENERATION_CONFIG_NAME)
    processor.save_pretrained(partial)
    torch.save(
        {"optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict()},
        partial / STATE_TORCH,
    )
    (partial / STATE_JSON).write_text(json.dumps(state.__dict__, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    if keep:
        for old in list_checkpoints(out)[:-keep]:
            shutil.rmtree(old)
    return final


def load_trainer_state(folder: Path) -> tuple[TrainerState, dict[str, Any]]:
    """The readable state and the torch state (optimizer, LR schedule) of a checkpoint folder."""
    state = TrainerState(**json.loads((folder / STATE_JSON).read_text()))
    torch_state = torch.load(folder / STATE_TORCH, weights_only=False)
    return state, torch_state
