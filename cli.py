"""The `vzero` command: one thin Typer command per job; all logic lives in the packages.

Heavy imports (matplotlib, bpy, torch) happen inside command bodies so that `vzero --help` is instant. Every
command names one concept one way: `--out/-o` for what it writes, `--num/-n` for how many, `--seed` wherever
randomness is drawn. Spellings of the previous release are kept as hidden aliases that warn, for one release.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

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
DatasetOutOption = Annotated[
    str,
    typer.Option(
        "--out",
        "-o",
        help="Dataset folder, or a URL fsspec writes (s3://BUCKET/NAME, gs://..., hf://datasets/ORG/NAME); "
        "re-run the same command to resume.",
    ),
]
BackendOption = Annotated[
    str, typer.Option(help="Where items are made: local (a process pool here) or ray (one Ray task per shard).")
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(help="Ray cluster for --backend ray: auto, HOST:PORT or ray://HOST:PORT (default: start one here)."),
]
NumOption = Annotated[int, typer.Option("--num", "-n", help="Number of pairs to make.")]
SeedOption = Annotated[int, typer.Option(help="Run seed; each pair's seed derives from it and the pair's index.")]
WorkersOption = Annotated[
    int | None,
    typer.Option(help="Worker processes (default: all CPU cores); with --backend ray, the CPUs of a Ray started here."),
]
ShardSizeOption = Annotated[int, typer.Option(help="Pairs per Parquet shard.")]
ShardOption = Annotated[str | None, typer.Option(help="Make only shards i, i+n, i+2n, ... (job arrays), as 'i/n'.")]
ItemTimeoutOption = Annotated[
    float, typer.Option(help="Seconds a worker may spend on one pair before it counts as hung and is replaced.")
]
DebugOption = Annotated[
    bool, typer.Option(help="Record each failed item's whole traceback in report.jsonl and print it (VZERO_DEBUG=1).")
]
SettingsOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="A domain option as key=value (repeatable); `vzero domains` lists them."),
]
DatasetArgument = Annotated[Path, typer.Argument(help="A dataset folder made by vzero.")]
DatasetLocationArgument = Annotated[
    str, typer.Argument(help="A dataset made by vzero: its folder, or its URL (s3://..., hf://datasets/ORG/NAME).")
]
LegacyOutArgument = Annotated[Path | None, typer.Argument(hidden=True, show_default=False)]
"""The output folder as the previous release took it, positional; `--out` replaces it."""

F = TypeVar("F", bound=Callable)


def reports_errors(command: F) -> F:
    """Turn the tool's own errors into one red line and exit 1; VZERO_DEBUG=1 keeps the traceback."""
    from datagen.errors import VzeroError
    from datagen.failures import debug_enabled

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except VzeroError as error:
            if debug_enabled(bool(kwargs.get("debug"))):
                raise
            error_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from error
        except KeyboardInterrupt:
            error_console.print("[yellow]interrupted; re-run the same command to resume[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


# The options every generation command has, declared once; `generation_command` adds them to a command.
RUN_OPTIONS_FIRST = [
    _keyword("out", DatasetOutOption),
    _keyword("num", NumOption),
    _keyword("seed", SeedOption, 0),
    _keyword("workers", WorkersOption, None),
]
RUN_OPTIONS_LAST = [
    _keyword("shard_size", ShardSizeOption, 500),
    _keyword("shard", ShardOption, None),
    _keyword("item_timeout", ItemTimeoutOption, 600.0),
    _keyword("backend", BackendOption, "local"),
    _keyword("ray_address", RayAddressOption, None),
    _keyword("debug", DebugOption, False),
]


def generation_command(body: F) -> F:
    """Give a command the shared run options (`--out`, `--num`, `--seed`, `--workers`, `--shard-size`, `--shard`,
    `--item-timeout`, `--backend`, `--ray-address`, `--debug`), declared once here.

    The command declares only its own options (and may redeclare a shared one to change its help or default); it
    reads the shared values through `run_domain(context, ...)`, which takes them from `context.params`.
    """
    own = {
        name: parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, parameter in inspect.signature(body, eval_str=True).parameters.items()
    }
    shared_names = {parameter.name for parameter in RUN_OPTIONS_FIRST + RUN_OPTIONS_LAST}
    context, *rest = (parameter for name, parameter in own.items() if name not in shared_names)
    # A shared option the command redeclares keeps its place in the help, with the command's help and default.
    first = [own.get(parameter.name, parameter) for parameter in RUN_OPTIONS_FIRST]
    last = [own.get(parameter.name, parameter) for parameter in RUN_OPTIONS_LAST]

    @functools.wraps(body)
    def command(**kwargs: Any) -> Any:
        return body(**{name: value for name, value in kwargs.items() if name in own})

    command.__signature__ = inspect.Signature([context, *first, *rest, *last])  # type: ignore[attr-defined]
    return command  # type: ignore[return-value]


def renamed(new: Any, old: Any, *, new_flag: str, old_flag: str) -> Any:
    """The value of an option given under its new name or (with a warning) its previous one; never both."""
    if old is None or old == []:
        return new
    if new is not None and new != []:
        raise typer.BadParameter(f"give {new_flag} only ({old_flag} is its old name)", param_hint=new_flag)
    error_console.print(f"[yellow]{old_flag} is now {new_flag}; the old spelling goes away in the next release[/]")
    return old


def required_out(out: Path | None, legacy: Path | None) -> Path:
    """`--out`, or the output folder given positionally as the previous release took it."""
    value = renamed(out, legacy, new_flag="--out", old_flag="the positional output folder")
    if value is None:
        raise typer.BadParameter("missing option --out", param_hint="--out")
    return value


def parse_size(value: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"size must look like 640x480, got {value!r}", param_hint="--size") from None
    return width, height


def parse_objects(value: str) -> tuple[int, int]:
    """'4-6' -> (4, 6); '5' -> (5, 5)."""
    try:
        low, _, high = value.partition("-")
        return int(low), int(high or low)
    except ValueError:
        raise typer.BadParameter(f"objects must look like 4-6 or 5, got {value!r}", param_hint="--objects") from None


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
    from datagen.layout import CARD_NAME, PREVIEW_NAME, REPORT_NAME

    table = Table(title="vzero run", show_header=False)
    rate = summary.records_made / summary.seconds if summary.seconds else 0.0
    for label, value in [
        ("output", str(summary.out)),
        ("pairs made now", f"{summary.records_made} ({rate:.1f} pairs/s over {summary.seconds:.1f} s)"),
        ("shards made / kept", f"{summary.shards_made} / {summary.shards_kept}"),
        ("attempts retried / items skipped", f"{summary.retried} / {summary.skipped}  (details: {REPORT_NAME})"),
        ("dataset complete", "yes" if summary.complete else "no (other shards still missing)"),
    ]:
        table.add_row(label, value)
    console.print(table)
    if summary.complete:
        # soft_wrap: a long path stays one line that can be copied, whatever the terminal's width.
        out = summary.out.rstrip("/")
        console.print(f"preview: {out}/{PREVIEW_NAME}   card: {out}/{CARD_NAME}", soft_wrap=True)
        console.print(f"load:    {load_hint(out)}", soft_wrap=True)


def load_hint(out: str) -> str:
    """How to load the finished dataset with `datasets`: by Hub id, as Parquet files at a URL, or as a folder."""
    from datagen.store import is_url

    hub_prefix = "hf://datasets/"
    if out.startswith(hub_prefix):
        return f"datasets.load_dataset({out[len(hub_prefix) :]!r}, split='train')"
    if is_url(out):
        return f"datasets.load_dataset('parquet', data_files={out + '/data/*.parquet'!r}, split='train')"
    return f"datasets.load_dataset({out!r}, split='train')"


# How a run is carried out, not what it makes: left out of the recorded command.
RUN_ONLY_OPTIONS = {"workers", "item_timeout", "backend", "ray_address", "debug"}


def command_line(context: typer.Context) -> str:
    """The command with every option as it took effect, so the card and manifest show how to repeat it.

    Arguments stay positional; a list option is joined with commas, except `--set`, which is repeated. Paths
    appear as typed when relative; an absolute one (naming the user's machine) becomes a placeholder.
    """
    from datagen.public import public_path

    words = ["vzero", context.info_name or ""]
    declared = {parameter.name: parameter for parameter in context.command.params}
    # Arguments first, then the options in the order click took them (as typed, then the defaults).
    for name in sorted(context.params, key=lambda name: declared[name].param_type_name != "argument"):
        parameter, value = declared[name], context.params[name]
        if parameter.name in RUN_ONLY_OPTIONS or value is None or value is False or value in ([], ()):
            continue
        if parameter.param_type_name == "argument":
            words.append(public_path(str(value)))
            continue
        flag = next(opt for opt in parameter.opts if opt.startswith("--"))
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)) and parameter.name == "settings":
            words += [word for item in value for word in (flag, public_path(str(item)))]
        else:
            text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            words += [flag, public_path(text)]
    return shlex.join(words)


def run_domain(context: typer.Context, domain_name: str, config: Any, num: int | None = None) -> None:
    """Shared body of the generation commands; the options every one of them has are read from `context`.

    `num` overrides `--num` where the command resolved it itself (e.g. from the number of source pairs).
    """
    from datagen.progress import progress_bar
    from datagen.registry import get_domain
    from datagen.runner import RunOptions, run

    params = context.params
    options = RunOptions(
        out=params["out"],
        num=params["num"] if num is None else num,
        seed=params["seed"],
        workers=params["workers"] or os.cpu_count() or 1,
        shard_size=params["shard_size"],
        job=parse_job(params["shard"]),
        item_timeout=params["item_timeout"],
        command=command_line(context),
        debug=params["debug"],
        backend=params["backend"],
        ray_address=params["ray_address"],
    )
    with progress_bar(console) as progress:
        summary = run(get_domain(domain_name), config, options, progress=progress)
    print_summary(summary)


def run_fields(context: typer.Context, domain_name: str, fields: dict[str, Any]) -> None:
    """Run `domain_name` with its config built from `fields`; a None value leaves that field at its default."""
    from datagen.registry import get_domain

    config_type = get_domain(domain_name).config_type
    run_domain(context, domain_name, config_type(**{key: value for key, value in fields.items() if value is not None}))


@app.command()
@reports_errors
@generation_command
def generate(
    context: typer.Context,
    domain: Annotated[str, typer.Argument(help="An installed domain (`vzero domains` lists them).")],
    settings: SettingsOption = None,
) -> None:
    """Pairs of any installed domain, its options given as --set key=value: the built-in ones or a package's own."""
    from datagen.config_fields import build_config, parse_settings
    from datagen.registry import get_domain

    found = get_domain(domain)
    run_domain(context, found.name, build_config(found.config_type, parse_settings(settings or [])))


@app.command()
@reports_errors
def domains(
    name: Annotated[str | None, typer.Argument(help="Show only this domain.")] = None,
) -> None:
    """The installed domains with their options (for `vzero generate DOMAIN --set key=value`)."""
    from datagen.config_fields import config_fields
    from datagen.registry import available_domains, get_domain

    for found in [get_domain(name)] if name else [get_domain(each) for each in available_domains()]:
        table = Table(title=f"{found.name}: {found.summary or found.module}", title_justify="left")
        for title in ("option", "type", "default", "help"):
            table.add_column(title, overflow="fold")
        for field in config_fields(found.config_type):
            default = ",".join(map(str, field.default)) if isinstance(field.default, tuple) else field.default
            table.add_row(field.name.replace("_", "-"), field.type_name, str(default), field.help)
        console.print(table)


@app.command("check-domain")
@reports_errors
def check_domain(
    domain: Annotated[str, typer.Argument(help="An installed domain (`vzero domains` lists them).")],
    settings: SettingsOption = None,
    num: Annotated[int, typer.Option("--num", "-n", help="Indices to check, and pairs in the end-to-end run.")] = 3,
    seed: Annotated[int, typer.Option(help="Run seed of the checked pairs.")] = 0,
    workers: Annotated[int, typer.Option(help="Worker processes of the end-to-end run.")] = 1,
) -> None:
    """Check a domain against the contract every domain keeps (`datagen.testing`): determinism, quality gate,
    record schema, JSON meta, descriptions, and a short run that validates, loads and matches in-process pairs."""
    from datagen.config_fields import build_config, parse_settings
    from datagen.registry import get_domain
    from datagen.testing import check_domain as check

    found = get_domain(domain)
    config = build_config(found.config_type, parse_settings(settings or []))
    report = check(found, config, num=num, seed=seed, workers=workers)
    for line in report.lines():
        console.print(f"[green]ok[/] {line}", highlight=False, soft_wrap=True)


@app.command()
@reports_errors
@generation_command
def chart(
    context: typer.Context,
    kinds: Annotated[list[str] | None, typer.Option(help="Chart kinds, comma-separated (default: all).")] = None,
    edit_kinds: Annotated[list[str] | None, typer.Option(help="Perturbations to draw from (default: all).")] = None,
    changes: Annotated[int, typer.Option(help="Changes per pair (the paper swaps two attributes).")] = 2,
    tables: Annotated[
        Path | None, typer.Option(help="Folder of CSV/Parquet/JSON tables to chart instead of synthetic ones.")
    ] = None,
    size: Annotated[str, typer.Option(help="Image size WIDTHxHEIGHT.")] = "640x480",
) -> None:
    """Chart pairs: matplotlib charts from tables, perturbed in data, text or style."""
    width, height = parse_size(size)
    fields = {"width": width, "height": height, "changes": changes, "tables": str(tables) if tables else None}
    run_fields(context, "chart", fields | {"kinds": split_names(kinds), "edit_kinds": split_names(edit_kinds)})


@app.command()
@reports_errors
@generation_command
def clevr(
    context: typer.Context,
    size: Annotated[str, typer.Option(help="Image size WIDTHxHEIGHT (CLEVR: 320x240).")] = "320x240",
    samples: Annotated[int, typer.Option(help="Cycles samples per pixel (denoised with OpenImageDenoise).")] = 8,
    objects: Annotated[str, typer.Option(help="Objects per civilian scene, MIN-MAX (CLEVR allows 3-10).")] = "4-6",
    changes: Annotated[int, typer.Option(help="Edits per pair, each on its own object.")] = 2,
    edit_kinds: Annotated[
        list[str] | None,
        typer.Option(help="Edit kinds, comma-separated; join per-object kinds with '+' (default: color+shape)."),
    ] = None,
    color_mode: Annotated[
        str, typer.Option(help="srgb: true CLEVR colours; clevr: rgb/255 as linear, CLEVR's washed-out look.")
    ] = "srgb",
    device: Annotated[str, typer.Option(help="Cycles device: cpu, cuda or optix.")] = "cpu",
) -> None:
    """CLEVR pairs: 3D scenes rendered with Blender Cycles; objects recoloured, reshaped, moved, added..."""
    width, height = parse_size(size)
    min_objects, max_objects = parse_objects(objects)
    fields = {
        "width": width,
        "height": height,
        "samples": samples,
        "min_objects": min_objects,
        "max_objects": max_objects,
        "changes": changes,
        "color_mode": color_mode,
        "device": device,
        "edit_kinds": split_names(edit_kinds),
    }
    run_fields(context, "clevr", fields)


@app.command()
@reports_errors
@generation_command
def realworld(
    context: typer.Context,
    num: Annotated[
        int | None,
        typer.Option("--num", "-n", help="Number of pairs to make; with --pairs, the most to take (default: all)."),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Folder of photos, or hf:ORG/NAME for a Hub dataset (default: built-in photos).")
    ] = None,
    split: Annotated[str, typer.Option(help="Split of a Hub dataset.")] = "train",
    image_column: Annotated[str, typer.Option(help="Image column of a Hub dataset.")] = "image",
    annotations: Annotated[
        Path | None, typer.Option(help="COCO-style instances JSON: edit its object masks instead of proposed regions.")
    ] = None,
    edit_kinds: Annotated[
        list[str] | None,
        typer.Option(
            help="Edit kinds, comma-separated: recolor, remove, duplicate, move, mirror, resize, brightness, "
            "retexture (default: all but retexture)."
        ),
    ] = None,
    edits: Annotated[list[str] | None, typer.Option(hidden=True)] = None,
    changes: Annotated[int | None, typer.Option(help="Edits per pair, each on a different region (default 2).")] = None,
    max_side: Annotated[int, typer.Option(help="Shrink photos so their long side is at most this many pixels.")] = 1024,
    max_images: Annotated[
        int | None, typer.Option(help="Use only the first N usable images (default: all; 500 rows of a Hub dataset).")
    ] = None,
    pairs: Annotated[
        str | None,
        typer.Option(
            help="Take before/after pairs from an image-editing dataset instead: hf:ORG/NAME or a local folder in "
            "Hub layout (see --layout and the column options)."
        ),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            help="Column names of a known --pairs dataset: magicbrush (default), hq-edit, ultraedit, imgedit."
        ),
    ] = None,
    before_column: Annotated[str | None, typer.Option(help="--pairs: column of the unedited image.")] = None,
    after_column: Annotated[str | None, typer.Option(help="--pairs: column of the edited image.")] = None,
    instruction_column: Annotated[
        str | None, typer.Option(help="--pairs: column of the edit instruction ('' for none).")
    ] = None,
    mask_column: Annotated[
        str | None, typer.Option(help="--pairs: column of a mask of the edit, white where edited ('' for none).")
    ] = None,
    shard_size: Annotated[
        int, typer.Option(help="Pairs per Parquet shard (~1 MB a pair at 1024 px, held in memory until written).")
    ] = 100,
) -> None:
    """Real-photo pairs: regions of photos recoloured, removed, moved, resized... with OpenCV; or the pairs of an
    image-editing dataset (--pairs), made exact by compositing."""
    from realworld_edit.domain import RealworldConfig, open_edit_pairs
    from realworld_edit.edit_pairs import LAYOUTS

    edit_kinds = renamed(edit_kinds, edits, new_flag="--edit-kinds", old_flag="--edits")
    context.params["edit_kinds"], context.params["edits"] = edit_kinds, None
    if pairs is not None:
        photo_only = {"--edit-kinds": edit_kinds, "--changes": changes, "--max-images": max_images}
        given = [name for name, value in photo_only.items() if value]
        if given:
            raise typer.BadParameter(
                f"{', '.join(given)} edit photos; they do not apply to --pairs", param_hint="--pairs"
            )
        layout = layout or "magicbrush"
        if layout not in LAYOUTS:
            raise typer.BadParameter(
                f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}", param_hint="--layout"
            )
        preset = LAYOUTS[layout]
        config = RealworldConfig(
            pairs=pairs,
            source=source,
            annotations=str(annotations) if annotations else None,
            split=split,
            max_side=max_side,
            max_pairs=num,
            before_column=before_column or preset.before,
            after_column=after_column or preset.after,
            instruction_column=preset.instruction if instruction_column is None else instruction_column or None,
            mask_column=preset.mask if mask_column is None else mask_column or None,
        )
        run_domain(context, "realworld", config, num=len(open_edit_pairs(config)))
        return
    pair_only = {
        "--layout": layout,
        "--before-column": before_column,
        "--after-column": after_column,
        "--instruction-column": instruction_column,
        "--mask-column": mask_column,
    }
    given = [name for name, value in pair_only.items() if value is not None]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} apply only with --pairs", param_hint="--pairs")
    if num is None:
        raise typer.BadParameter("--num is required unless --pairs is given", param_hint="--num")
    fields = {
        "source": source,
        "split": split,
        "image_column": image_column,
        "annotations": str(annotations) if annotations else None,
        "changes": 2 if changes is None else changes,
        "max_side": max_side,
        "max_images": max_images,
        "edit_kinds": split_names(edit_kinds),
    }
    run_fields(context, "realworld", fields)


@app.command()
@reports_errors
def preview(
    dataset: DatasetLocationArgument,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="PNG to write (default: the dataset's preview.png).")
    ] = None,
    num: Annotated[
        int | None, typer.Option("--num", "-n", min=1, max=200, help="Number of pairs on the sheet [default: 12].")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", hidden=True)] = None,
    n: Annotated[int | None, typer.Option("--n", min=1, max=200, hidden=True)] = None,
) -> None:
    """Contact sheet of pairs: civilian | spy | difference outlined."""
    from datagen.preview import write_preview

    out = renamed(out, output, new_flag="--out", old_flag="--output")
    num = renamed(num, n, new_flag="--num", old_flag="--n")
    console.print(f"wrote {write_preview(dataset, out, 12 if num is None else num)}")


@app.command()
@reports_errors
def info(dataset: DatasetLocationArgument) -> None:
    """Counts per domain and edit kind, difficulty histogram, image sizes and rejects of a dataset (folder or URL)."""
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


@app.command()
@reports_errors
def merge(
    sources: Annotated[list[Path], typer.Argument(help="Dataset folders to merge (two or more).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the merged dataset.")],
) -> None:
    """Merge dataset folders into one: a config per domain plus `all`; pair ids must stay unique."""
    from datagen.merge import merge as merge_datasets
    from datagen.public import public_path

    command = shlex.join(
        ["vzero", "merge", *(public_path(str(source)) for source in sources), "--out", public_path(str(out))]
    )
    merged = merge_datasets(sources, out, command=command)
    console.print(f"merged {len(sources)} folders into {merged}   card: {merged / 'README.md'}")


@app.command()
@reports_errors
def export(
    dataset: DatasetArgument,
    legacy_out: LegacyOutArgument = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder to write the exported pairs into.")] = None,
    export_format: Annotated[
        str, typer.Option("--format", help="Layout to write: vision-zero (the original release's).")
    ] = "vision-zero",
) -> None:
    """Write a dataset in another layout, e.g. <id>_original.png, <id>_modified.png and <id>.json per pair."""
    from datagen.export import export_dataset

    summary = export_dataset(dataset, required_out(out, legacy_out), export_format=export_format)
    console.print(f"exported {summary.pairs} pairs to {summary.out} ({export_format} layout)")


@app.command()
@reports_errors
def qa(
    dataset: Annotated[str, typer.Argument(help="Pair dataset: a folder made by vzero or a Hub dataset id ORG/NAME.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the question dataset.")],
    seed: SeedOption = 0,
    config: Annotated[str | None, typer.Option(help="Only this domain of a merged dataset (default: all).")] = None,
) -> None:
    """Verifiable "what changed?" questions (multiple choice, answers from the pairs' ground truth) as a dataset."""
    from datagen.loading import public_name
    from datagen.qa_dataset import build_qa_dataset

    # The card gets published: it names the source and the folder, never a path of this machine.
    command = shlex.join(["vzero", "qa", public_name(dataset), "--out", out.name, "--seed", str(seed)])
    summary = build_qa_dataset(dataset, out, seed=seed, config=config, command=command)
    counts = Table(title=f"{summary.pairs} pairs -> questions", title_justify="left")
    kinds = sorted({kind for counter in summary.counts.values() for kind in counter})
    counts.add_column("domain")
    for kind in kinds:
        counts.add_column(kind, justify="right")
    for domain, counter in summary.counts.items():
        counts.add_row(domain, *(str(counter[kind]) for kind in kinds))
    console.print(counts)
    console.print(f"wrote {summary.out}   card: {summary.out / 'README.md'}", soft_wrap=True)


RepoIdArgument = Annotated[str, typer.Argument(help="Hub dataset id, ORG/NAME.")]
RevisionOption = Annotated[str | None, typer.Option(help="Branch (publish creates it) or commit; default main.")]


@app.command()
@reports_errors
def publish(
    dataset: DatasetArgument,
    repo_id: RepoIdArgument,
    private: Annotated[bool, typer.Option(help="Create the dataset repository as private.")] = False,
    revision: RevisionOption = None,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
) -> None:
    """Upload a dataset folder to the Hub (HF_TOKEN or `hf auth login`; HF_ENDPOINT for a self-hosted Hub).

    The folder is validated first; re-running after an interruption uploads only what is missing.
    """
    from datagen.hub import publish as publish_dataset
    from datagen.progress import progress_bar

    with progress_bar(console, unit="bytes") as progress:
        result = publish_dataset(
            dataset, repo_id, private=private, revision=revision, message=message, progress=progress
        )
    console.print(
        f"uploaded {len(result.uploaded)} file(s) in {result.commits} commit(s), {len(result.unchanged)} already "
        f"there" + (f", deleted {len(result.deleted)} stale shard(s)" if result.deleted else "")
    )
    console.print(f"dataset: {result.url}")


@app.command()
@reports_errors
def pull(
    repo_id: RepoIdArgument,
    legacy_out: LegacyOutArgument = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder to download into; re-run to update it.")
    ] = None,
    revision: RevisionOption = None,
) -> None:
    """Download a dataset from the Hub into a local folder and check it."""
    from datagen.hub import pull as pull_dataset

    out = required_out(out, legacy_out)
    with console.status(f"downloading {repo_id}"):
        folder = pull_dataset(repo_id, out, revision=revision)
    console.print(f"pulled {repo_id} into {folder}")


@app.command("make-tiny-model")
@reports_errors
def make_tiny_model(
    legacy_out: LegacyOutArgument = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder to write the model into.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
    family: Annotated[
        str, typer.Option(help="Architecture: qwen2_vl, qwen2_5_vl, qwen3_vl or internvl (InternVL3, native).")
    ] = "qwen2_5_vl",
) -> None:
    """A tiny random VLM of a real architecture (offline tokenizer, chat template) for smoke runs and tests on a CPU."""
    from training.tiny_model import make_tiny_model as build

    console.print(f"wrote {build(required_out(out, legacy_out), family=family, seed=seed)}")


@app.command()
@reports_errors
def train(
    data: Annotated[str, typer.Option(help="Pair dataset: a folder made by vzero or a Hub dataset id ORG/NAME.")],
    model: Annotated[str, typer.Option(help="Model folder or Hub id, e.g. Qwen/Qwen2.5-VL-7B-Instruct.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: metrics.jsonl, checkpoints/step-*.")],
    recipe: Annotated[str, typer.Option(help="Shipped recipe (paper, tiny-cpu) or a recipe YAML file.")] = "paper",
    seed: Annotated[
        int | None, typer.Option(help="Run seed: data order, games and sampling (overrides the recipe's).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps (overrides the recipe).")] = None,
    log_games: Annotated[
        int | None, typer.Option(help="Games per step written to games.jsonl (default: all; 0: none).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out.")] = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a recipe value: section.field=value (repeatable).")
    ] = None,
) -> None:
    """Train a VLM with Iterative-SPO self-play on a pair dataset (`accelerate launch` for several GPUs)."""
    from training.recipe import load_recipe
    from training.trainer import TrainOptions, run_training

    settings = [
        *(overrides or []),
        *([f"seed={seed}"] if seed is not None else []),
        *([f"max_steps={max_steps}"] if max_steps is not None else []),
        *([f"log_games={log_games}"] if log_games is not None else []),
    ]
    options = TrainOptions(data=data, model=model, out=out, recipe=load_recipe(recipe, settings), resume=resume)
    run_training(options, console=console)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, the main process speaks for all
        console.print(
            f"run folder: {out}   metrics: {out / 'metrics.jsonl'}   games: {out / 'games.jsonl'}   "
            f"checkpoints: {out / 'checkpoints'}",
            soft_wrap=True,
        )


@app.command("eval")
@reports_errors
def evaluate(
    model: Annotated[
        list[str], typer.Option(help="Model folder or Hub id; give it twice to compare two models on the same games.")
    ],
    data: Annotated[str, typer.Option(help="Held-out pair dataset: a folder made by vzero or a Hub id ORG/NAME.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for eval.json and eval.md.")],
    config: Annotated[str | None, typer.Option(help="Only this domain of a merged dataset (default: all).")] = None,
    games: Annotated[int, typer.Option(help="Games to play, each on its own pair.")] = 64,
    seed: Annotated[int, typer.Option(help="Picks the pairs, seats, orders, questions and sampling seeds.")] = 0,
    recipe: Annotated[str, typer.Option(help="How a game is played: shipped recipe or YAML (as in train).")] = "paper",
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override a recipe value: section.field=value (repeatable).")
    ] = None,
    questions: Annotated[bool, typer.Option(help='Also ask the "what changed?" questions about the pairs.')] = True,
) -> None:
    """Play held-out games (no training) and answer "what changed?" questions; per domain and difficulty, with 95%
    intervals, and side by side with differences when two models are given."""
    from training.eval_report import header, table_rows, write_report
    from training.eval_stats import summarize
    from training.evaluation import EvalOptions, run_evaluation
    from training.recipe import load_recipe

    options = EvalOptions(
        models=tuple(model),
        data=data,
        out=out,
        recipe=load_recipe(recipe, overrides or []),
        games=games,
        seed=seed,
        config=config,
        questions=questions,
    )
    run = run_evaluation(options, console=console)
    summary = summarize(run.labels, run.games, run.questions, seed)
    table = Table(
        title=" vs ".join(run.labels) + ": all games (per domain and difficulty: eval.md)", title_justify="left"
    )
    for title in header(run.labels)[1:]:
        table.add_column(title)
    for row in table_rows(run.labels, summary):
        if row[0] == "all":
            table.add_row(*row[1:])
    console.print(table)
    console.print(f"wrote {write_report(out, options, run, summary)} and {out / 'eval.md'}", soft_wrap=True)


@app.command("export-model")
@reports_errors
def export_model(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `vzero train`.")],
    legacy_out: LegacyOutArgument = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="New folder for the standalone model.")] = None,
    step: Annotated[int | None, typer.Option(help="Checkpoint step to export [default: the newest].")] = None,
) -> None:
    """Write a checkpoint as a model folder that VLMEvalKit and lmms-eval load as it is; print how to evaluate it."""
    from training.export import export_model as export

    exported = export(run_dir, required_out(out, legacy_out), step=step)
    console.print(f"exported step {exported.step} ({exported.model_type}) to {exported.out}", soft_wrap=True)
    for evaluator, command in exported.commands.items():
        console.print(f"\n[bold]{evaluator}[/]:", highlight=False)
        console.print(command, highlight=False, soft_wrap=True, markup=False)
    if "VLMEvalKit" not in exported.commands:
        console.print(
            f"\nVLMEvalKit: none of its model classes loads a transformers-native {exported.model_type} folder "
            "(its InternVLChat needs OpenGVLab's remote-code checkpoints); use lmms-eval.",
            soft_wrap=True,
        )


@app.command()
@reports_errors
def games(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `vzero train` (it holds games.jsonl).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file to write [default: RUN_DIR/games.html].")
    ] = None,
    steps: Annotated[str, typer.Option(help="Steps to show: all, last, or e.g. 1,5-8.")] = "all",
    data: Annotated[
        str | None, typer.Option(help="Dataset to take the pair images from [default: the one the run trained on].")
    ] = None,
    images: Annotated[bool, typer.Option(help="Embed each game's two images.")] = True,
) -> None:
    """Render a run's game transcripts as one HTML page: images, clues, votes, rewards and advantages per game."""
    from training.games_page import games_page

    page = games_page(run_dir, steps=steps, data=data, with_images=images)
    target = out or run_dir / "games.html"
    target.write_text(page, encoding="utf-8")
    console.print(f"wrote {target}")


def main() -> None:
    app()
