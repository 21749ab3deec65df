"""Per-step training logs: `metrics.jsonl` (with a console line and accelerate's trackers) and the JSON-lines files
of a run folder in general, which a resumed run cuts back to its checkpoint and then continues."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console

from training.trackers import Trackers

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


class StepLog:
    """A JSON-lines file of records that each carry a `step`, written by the main process only."""

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop lines of steps after `step` (written by a run that crashed before its next checkpoint)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append `records`, one line each."""
        if not self.enabled or not records:
            return
        with self.path.open("a") as file:
            file.writelines(json.dumps(record) + "\n" for record in records)


class MetricsLog:
    """Writes each step's metrics to `metrics.jsonl` (appending, so a resumed run continues it) and trackers."""

    def __init__(self, out: Path, *, trackers: Trackers, console: Console | None, is_main: bool) -> None:
        self.file = StepLog(out / METRICS_FILE, enabled=is_main)
        self.trackers = trackers
        self.console = console
        self.is_main = is_main

    def truncate_after(self, step: int) -> None:
        """Drop lines of steps after `step`."""
        self.file.truncate_after(step)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Record one step."""
        if not self.is_main:
            return
        record = {"step": step, **{key: _plain(value) for key, value in metrics.items()}}
        self.file.append([record])
        numeric = {key: value for key, value in record.items() if isinstance(value, int | float) and key != "step"}
        self.trackers.log(numeric, step=step)
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
