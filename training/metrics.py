"""Per-step training metrics: one JSON line per step in `metrics.jsonl`, a console line, and accelerate's trackers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console

METRICS_FILE = "metrics.jsonl"
# The console shows these, in this order, with these labels; everything else goes to the file and trackers.
CONSOLE_COLUMNS = (
    ("stage", "stage", "{}"),
    ("game/accuracy", "acc", "{:.2f}"),
    ("game/na_rate", "N/A", "{:.2f}"),
    ("reward/spy", "r_spy", "{:+.3f}"),
    ("reward/civilian", "r_civ", "{:+.3f}"),
    ("reward/vote", "r_vote", "{:+.2f}"),
    ("loss/kl", "KL", "{:.4f}"),
    ("tokens/clue", "len_clue", "{:.0f}"),
    ("tokens/vote", "len_vote", "{:.0f}"),
    ("speed/tokens_per_s", "tok/s", "{:.0f}"),
)


class MetricsLog:
    """Writes each step's metrics to the JSONL file (appending, so a resumed run continues it) and trackers."""

    def __init__(self, out: Path, *, accelerator: Any, console: Console | None, is_main: bool) -> None:
        self.path = out / METRICS_FILE
        self.accelerator = accelerator
        self.console = console
        self.is_main = is_main

    def truncate_after(self, step: int) -> None:
        """Drop lines of steps after `step` (written by a run that crashed before its next checkpoint)."""
        if not self.is_main or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Record one step."""
        if not self.is_main:
            return
        record = {"step": step, **{key: _plain(value) for key, value in metrics.items()}}
        with self.path.open("a") as file:
            file.write(json.dumps(record) + "\n")
        numeric = {key: value for key, value in record.items() if isinstance(value, int | float) and key != "step"}
        self.accelerator.log(numeric, step=step)
        if self.console is not None:
            parts = [f"step {step:>4}"]
            for key, label, fmt in CONSOLE_COLUMNS:
                if key in record and record[key] is not None:
                    parts.append(f"{label} {fmt.format(record[key])}")
            self.console.print("  ".join(parts), highlight=False, soft_wrap=True)


def _plain(value: Any) -> Any:
    """JSON-safe scalars: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
