"""Experiment trackers beside `metrics.jsonl`: TensorBoard and Weights & Biases, each only where installed.

With `trackers: all`, every installed one logs each step's numeric metrics (TensorBoard under `OUT/tensorboard`;
W&B as project `vision-zero`, following `WANDB_MODE`/`WANDB_PROJECT` like any W&B script); `none` logs to none.
Only the main process creates trackers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

PROJECT = "vision-zero"


class Trackers:
    """The installed trackers a run logs to."""

    def __init__(self, out: Path, *, enabled: bool, config: dict[str, Any]) -> None:
        self.writers: list[Any] = []
        self.runs: list[Any] = []
        if not enabled:
            return
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writers.append(SummaryWriter(log_dir=str(out / "tensorboard")))
        if importlib.util.find_spec("wandb") is not None:
            import wandb

            self.runs.append(wandb.init(project=PROJECT, name=out.name, config=config))

    def log(self, metrics: dict[str, float], step: int) -> None:
        for writer in self.writers:
            for key, value in metrics.items():
                writer.add_scalar(key, value, global_step=step)
        for run in self.runs:
            run.log(metrics, step=step)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for run in self.runs:
            run.finish()
        self.writers, self.runs = [], []
