"""The `vzero` command: one thin Typer command per job; all logic lives in the packages.

Heavy imports (matplotlib, bpy, torch) happen inside command bodies so that `vzero --help` is instant.
"""

from __future__ import annotations

import functools
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Make spot-the-difference pair datasets, publish them, and train VLMs on them (Vision-Zero).",
)
console = Console()
error_console = Console(stderr=True)

OutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Dataset folder to write; re-run the same command to resume.")
]
NumOption = Annotated[int, typer.Option("--num", "-n", help="Number of pairs to make.")]
SeedOption = Annotated[int, typer.Option(help="Run seed; each pair's seed derives from it and the pair's index.")]
WorkersOption = Annotated[int, typer.Option(help="Worker processes (default: all CPU cores).")]
ShardSizeOption = Annotated[int, typer.Option(help="Pairs per Parquet shard.")]
ShardOption = Annotated[str | None, typer.Option(help="Make only shards i, i+n, i+2n, ... (job arrays), as 'i/n'.")]
DatasetArgument = Annotated[Path, typer.Argument(help="A dataset folder made by vzero.")]

F = TypeVar("F", bound=Callable)


def reports_errors(command: F) -> F:
    """Turn the tool's own errors into one red line and exit 1; VZERO_DEBUG=1 keeps the traceback."""
    from datagen.errors import VzeroError

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except VzeroError as error:
            if os.environ.get("VZERO_DEBUG"):
                raise
            error_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from error
        except KeyboardInterrupt:
            error_console.print("[yellow]interrupted; re-run the same command to resume[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def parse_size(value: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"size must look like 640x480, got {value!r}", param_hint="--size") from None
    return width, height


def parse_job(value: str | None) -> tuple[int, int] | None:
    """'2/8' -> (2, 8)."""
    if value is None:
        return None
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise typer.BadParameter(f"shard must look like i/n (e.g. 0/4), got {value!r}", param_hint="--shard") from None
    return index, count


def split_names(values: list[str] | None) -> tuple[str, ...] | None:
    """Accept both `--kinds bar,line` and `--kinds bar --kinds line`."""
    if not values:
        return None
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def print_summary(summary) -> None:
    table = Table(title="vzero run", show_header=False)
    rate = summary.records_made / summary.seconds if summary.seconds else 0.0
    for label, value in [
        ("output", str(summary.out)),
        ("pairs made now", f"{summary.records_made} ({rate:.1f} pairs/s over {summary.seconds:.1f} s)"),
        ("shards made / kept", f"{summary.shards_made} / {summary.shards_kept}"),
        ("attempts retried / items skipped", f"{summary.retried} / {summary.skipped}  (details: report.jsonl)"),
        ("dataset complete", "yes" if summary.complete else "no (other shards still missing)"),
    ]:
        table.add_row(label, value)
    console.print(table)
    if summary.complete:
        console.print(f"preview: {summary.out / 'preview.png'}   card: {summary.out / 'README.md'}")
        console.print(f"load:    datasets.load_dataset({str(summary.out)!r}, split='train')")


def command_line(context: typer.Context) -> str:
    """The command with every option as it took effect, so the card and manifest show how to repeat it."""
    words = ["vzero", context.info_name or ""]
    for name, value in context.params.items():
        if name == "workers" or value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        words += [f"--{name.replace('_', '-')}", str(value)]
    return shlex.join(words)


def run_domain(
    context: typer.Context,
    domain_name: str,
    config,
    *,
    out: Path,
    num: int,
    seed: int,
    workers: int | None,
    shard_size: int,
    shard: str | None,
) -> None:
    """Shared body of the generation commands."""
    from datagen.progress import generation_progress
    from datagen.registry import get_domain
    from datagen.runner import RunOptions, run

    options = RunOptions(
        out=out,
        num=num,
        seed=seed,
        workers=workers or os.cpu_count() or 1,
        shard_size=shard_size,
        job=parse_job(shard),
        command=command_line(context),
    )
    with generation_progress(console) as progress:
        summary = run(get_domain(domain_name), config, options, progress=progress)
    print_summary(summary)


@app.command()
@reports_errors
def chart(
    context: typer.Context,
    out: OutOption,
    num: NumOption,
    seed: SeedOption = 0,
    workers: WorkersOption = None,
    kinds: Annotated[list[str] | None, typer.Option(help="Chart kinds, comma-separated (default: all).")] = None,
    edit_kinds: Annotated[list[str] | None, typer.Option(help="Perturbations to draw from (default: all).")] = None,
    changes: Annotated[int, typer.Option(help="Changes per pair (the paper swaps two attributes).")] = 2,
    tables: Annotated[
        Path | None, typer.Option(help="Folder of CSV/Parquet/JSON tables to chart instead of synthetic ones.")
    ] = None,
    size: Annotated[str, typer.Option(help="Image size WIDTHxHEIGHT.")] = "640x480",
    shard_size: ShardSizeOption = 500,
    shard: ShardOption = None,
) -> None:
    """Chart pairs: matplotlib charts from tables, perturbed in data, text or style."""
    from chart_edit.domain import ChartConfig

    width, height = parse_size(size)
    fields = {"width": width, "height": height, "changes": changes, "tables": str(tables) if tables else None}
    fields |= {
        key: value for key, value in [("kinds", split_names(kinds)), ("edit_kinds", split_names(edit_kinds))] if value
    }
    config = ChartConfig(**fields)
    run_domain(
        context, "chart", config, out=out, num=num, seed=seed, workers=workers, shard_size=shard_size, shard=shard
    )


@app.command()
@reports_errors
def preview(
    dataset: DatasetArgument,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="PNG to write (default: DIR/preview.png).")
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=200, help="Number of pairs on the sheet.")] = 12,
) -> None:
    """Contact sheet of pairs: civilian | spy | difference outlined."""
    from datagen.preview import write_preview

    console.print(f"wrote {write_preview(dataset, output, n)}")


@app.command()
@reports_errors
def info(dataset: DatasetArgument) -> None:
    """Counts per domain and edit kind, difficulty histogram, image sizes and rejects of a dataset folder."""
    from datagen.stats import DIFFICULTY_BINS, compute_stats

    stats = compute_stats(dataset)
    console.print(
        f"[bold]{dataset}[/]: {stats.records} pairs" + (f" of {stats.planned} planned" if stats.planned else "")
    )
    for title, counter in [
        ("domain", stats.domains),
        ("edit kind", stats.edit_ops),
        ("image size", stats.image_sizes),
        ("edits per pair", stats.edits_per_pair),
    ]:
        table = Table(title_justify="left")
        table.add_column(title)
        table.add_column("count", justify="right")
        for key, count in sorted(counter.items(), key=lambda item: (-item[1], str(item[0]))):
            table.add_row(str(key), str(count))
        console.print(table)
    histogram = Table(title_justify="left")
    histogram.add_column("difficulty")
    histogram.add_column("pairs", justify="right")
    histogram.add_column("")
    peak = max(stats.difficulty_histogram) or 1
    for i, count in enumerate(stats.difficulty_histogram):
        histogram.add_row(
            f"{i / DIFFICULTY_BINS:.1f}-{(i + 1) / DIFFICULTY_BINS:.1f}", str(count), "█" * round(30 * count / peak)
        )
    console.print(histogram)
    console.print(
        f"rejects: {stats.retried} attempts retried, {stats.skipped} items skipped, "
        f"{stats.inputs_skipped} input files skipped"
    )


def main() -> None:
    app()
