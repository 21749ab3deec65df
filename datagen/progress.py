"""The one progress bar of the tool: description, bar, done of total, rate and time left, in pairs or in bytes.

Generation counts pairs, publishing counts bytes; both are the same `Progress` with explicit columns, so that
messages printed through `progress.console` keep the bar intact in either.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second over rich's recent window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:6.1f} pairs/s" if speed else "   --- pairs/s", style="progress.data.speed")


def progress_bar(console: Console | None = None, *, unit: str = "pairs") -> Progress:
    """A progress display counting `unit` (`pairs` or `bytes`); use as a context manager."""
    if unit == "pairs":
        counted: list[ProgressColumn] = [MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(), TextColumn("eta")]
    elif unit == "bytes":
        counted = [DownloadColumn(), TransferSpeedColumn()]
    else:
        raise ValueError(f"unit must be 'pairs' or 'bytes', got {unit!r}")
    return Progress(
        TextColumn("[bold blue]{task.description}"), BarColumn(), *counted, TimeRemainingColumn(), console=console
    )
