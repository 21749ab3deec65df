"""The measuring mechanics the `bench_*.py` scripts share, kept in one place so that they measure alike.

Every benchmark runs each configuration in a fresh subprocess of itself (so CPU time and peak RSS are that
configuration's alone), reads the JSON it prints back, describes the machine and its load, prints a rich table
and writes `bench/results/<name>.{md,json}`. What each one measures, its columns and its wording stay in the
script. Only the standard library is imported at the top: the measuring subprocesses import this module too,
and anything heavier would count in their peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datagen.registry import Domain
    from datagen.runner import RunSummary

RESULTS = Path(__file__).parent / "results"


def usage(children: bool = True) -> tuple[float, float]:
    """(CPU seconds of this process and, with `children`, its reaped children; peak RSS in MiB of the largest).

    Children count where the work runs in worker processes; a single-process measurement leaves them out.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    cpu, rss = own.ru_utime + own.ru_stime, own.ru_maxrss
    if children:
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu, rss = cpu + reaped.ru_utime + reaped.ru_stime, max(rss, reaped.ru_maxrss)
    return cpu, rss / 1024


class Stopwatch:
    """Wall seconds, CPU seconds and peak RSS of the `with` block, the three numbers every benchmark reports."""

    def __init__(self, children: bool = True) -> None:
        self.children = children
        self.wall_s = self.cpu_s = self.peak_rss_mib = 0.0

    def __enter__(self) -> Stopwatch:
        self._cpu_before, _ = usage(self.children)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.wall_s = time.perf_counter() - self._started
        cpu, self.peak_rss_mib = usage(self.children)
        self.cpu_s = cpu - self._cpu_before

    def as_dict(self) -> dict[str, float]:
        """The measurement under the keys the results files use."""
        return {"wall_s": self.wall_s, "cpu_s": self.cpu_s, "peak_rss_mib": self.peak_rss_mib}


def timed_run(
    domain: Domain, config: Any, out: Path, num: int, workers: int, shard_size: int
) -> tuple[RunSummary, Stopwatch]:
    """Make `num` pairs with the vzero runner (seed 0), timed, as the runner rows of the benchmarks do."""
    from datagen.runner import RunOptions, run

    options = RunOptions(out=out, num=num, seed=0, workers=workers, shard_size=shard_size)
    with Stopwatch() as clock:
        summary = run(domain, config, options)
    return summary, clock


def runner_name(workers: int) -> str:
    """The configuration name of a runner row with `workers` workers."""
    return f"vzero runner, {workers} worker{'s' * (workers > 1)}"


def argument_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first line of `doc`, with the hidden `--measure` flag `in_subprocess` passes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    return parser


def reply(result: dict) -> None:
    """Hand a measurement back to the parent: the last line printed is what `in_subprocess` reads."""
    print(json.dumps(result))


def in_subprocess(script: str, *arguments: str) -> dict:
    """Run `script` in `--measure` mode in a fresh Python and return the JSON it replies with."""
    result = subprocess.run([sys.executable, script, "--measure", *arguments], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"measurement {arguments} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, recorded since the machine may be shared."""
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> str:
    """Cores, processor, Python version and today's date, for the first line of each results file."""
    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
    )


def rate_cells(row: dict, count: str = "pairs", rate: str = ".1f", cost: str = ".4f") -> tuple[str, str, str]:
    """Items per second, CPU-s per item and peak RSS in MiB of a measured row, formatted as `rate` and `cost`."""
    return (
        f"{row[count] / row['wall_s']:{rate}}",
        f"{row['cpu_s'] / row[count]:{cost}}",
        f"{row['peak_rss_mib']:.0f}",
    )


def show_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], left: Iterable[str], notes: Iterable[str] = ()
) -> None:
    """Print a table (the `left` columns left-justified, the numbers right-justified), then any note lines."""
    from rich.console import Console
    from rich.table import Table

    left = set(left)
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note)


def write_results(name: str, markdown: str, record: dict, folder: Path = RESULTS) -> None:
    """Write `<name>.md` and `<name>.json` into `folder` (`bench/results/`; a smoke test passes its own)."""
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.md").write_text(markdown)
    (folder / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
