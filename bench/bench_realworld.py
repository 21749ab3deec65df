"""Benchmark: real-photo pairs per second with the vzero runner (1 and 2 workers), and where the time goes.

The photos are the built-in ones (scikit-image's) enlarged to 1024 pixels on the long side and saved as
JPEG in a scratch folder, so that decoding, region proposals, edits and PNG encoding all work at the
size the issue asks about. Each runner configuration runs in its own subprocess so that CPU time (self
+ reaped workers) and peak RSS are that configuration's alone. A third subprocess times the stages of
one pair in a single process. The load average is recorded, since the machine may be shared.
Prints a table and writes `bench/results/realworld.{md,json}`.

    python bench/bench_realworld.py [--num 300] [--side 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
STAGE_PAIRS = 60
SHARD_SIZE = 100
"""As `vzero realworld` defaults to: the parent holds a shard's encoded pairs (~1 MB each at 1024 px)."""


def usage() -> tuple[float, float]:
    """(CPU seconds of this process and its reaped children, peak RSS in MiB of the largest of them)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, max(own.ru_maxrss, children.ru_maxrss) / 1024


def write_photos(folder: Path, side: int) -> None:
    """The built-in photos enlarged to `side` pixels on the long side, as JPEG files in `folder`."""
    import cv2

    from realworld_edit.sources import open_source

    folder.mkdir(parents=True, exist_ok=True)
    source = open_source(None, max_side=4096)
    for index in range(len(source)):
        photo = source.load(index)
        height, width = photo.pixels.shape[:2]
        scale = side / max(height, width)
        size = (round(width * scale), round(height * scale))
        enlarged = cv2.resize(photo.pixels, size, interpolation=cv2.INTER_CUBIC)
        name = photo.image_id.split("/")[-1] + ".jpg"
        cv2.imwrite(str(folder / name), cv2.cvtColor(enlarged, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])


def measure_runner(out: Path, photos: Path, num: int, workers: int, side: int) -> dict:
    from datagen.runner import RunOptions, run
    from realworld_edit.domain import DOMAIN, RealworldConfig

    cpu_before, _ = usage()
    started = time.perf_counter()
    summary = run(
        DOMAIN,
        RealworldConfig(source=str(photos), max_side=side),
        RunOptions(out=out, num=num, seed=0, workers=workers, shard_size=SHARD_SIZE),
    )
    wall = time.perf_counter() - started
    cpu, rss = usage()
    return {
        "pairs": summary.records_made,
        "attempts_retried": summary.retried,
        "wall_s": wall,
        "cpu_s": cpu - cpu_before,
        "peak_rss_mib": rss,
    }


def measure_stages(photos: Path, num: int, side: int) -> dict:
    """CPU milliseconds spent in each stage, one process, `num` pairs.

    Decoding and proposals are per photo (a worker keeps recent photos); they are reported per photo
    decoded, which is what a pair costs when every pair comes from a new photo. CPU time, not wall
    time, so that other jobs on a shared machine do not inflate the numbers.
    """
    from datagen.errors import VzeroError
    from datagen.record import encode_pair
    from datagen.seeding import item_seed
    from realworld_edit.domain import QUALITY, RealworldConfig, make_generator
    from realworld_edit.regions import propose_regions

    generator = make_generator(RealworldConfig(source=str(photos), max_side=side))
    source = generator.source
    decode = proposals = 0.0
    for index in range(len(source)):
        started = time.process_time()
        photo = source.load(index)
        decode += time.process_time() - started
        started = time.process_time()
        propose_regions(photo.pixels)
        proposals += time.process_time() - started
    for index in range(len(source)):
        generator.photo(index)
    edit = check = encode = 0.0
    made = 0
    for index in range(num):
        started = time.process_time()
        try:
            pair = generator(index, item_seed(0, index))
        except VzeroError:
            continue
        edit += time.process_time() - started
        started = time.process_time()
        QUALITY.check(pair)
        check += time.process_time() - started
        started = time.process_time()
        encode_pair(pair, domain="realworld", run_seed=0, index=index, seed=0)
        encode += time.process_time() - started
        made += 1
    return {
        "photos": len(source),
        "pairs": made,
        "ms_per_photo": {
            "decode and resize": 1000 * decode / len(source),
            "region proposals": 1000 * proposals / len(source),
        },
        "ms_per_pair": {
            "edits, compositing, diff mask (photo cached)": 1000 * edit / made,
            "quality gate": 1000 * check / made,
            "PNG encoding (civilian, spy, mask)": 1000 * encode / made,
        },
    }


def in_subprocess(*arguments: str) -> dict:
    """Run this script in `--measure` mode and return the JSON it prints."""
    result = subprocess.run(
        [sys.executable, __file__, "--measure", *arguments], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], stages: dict, num: int, side: int, load: dict) -> str:
    lines = [
        f"Real-photo pairs from {side}-px photos (the built-in photos enlarged), {num} pairs per row; "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}. Load average before / after: {load['before']} / {load['after']}"
        " (the machine was shared: other jobs' load slows every row).",
        "",
        "| configuration | pairs/s | CPU-s per pair | peak RSS (largest process) | attempts retried |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['pairs'] / row['wall_s']:.1f} | {row['cpu_s'] / row['pairs']:.4f} | "
            f"{row['peak_rss_mib']:.0f} MiB | {row['attempts_retried']} |"
        )
    lines += ["", f"Where the time goes (one process, {stages['pairs']} pairs from {stages['photos']} photos):", ""]
    lines += ["| stage | ms |", "|---|---:|"]
    for name, value in stages["ms_per_photo"].items():
        lines.append(f"| {name}, per photo | {value:.1f} |")
    for name, value in stages["ms_per_pair"].items():
        lines.append(f"| {name}, per pair | {value:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=300)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        mode, photos, *rest = args.measure
        if mode == "runner":
            result = measure_runner(Path(rest[0]), Path(photos), args.num, int(rest[1]), args.side)
        else:
            result = measure_stages(Path(photos), min(args.num, STAGE_PAIRS), args.side)
        print(json.dumps(result))
        return

    from rich.console import Console
    from rich.table import Table

    load_before = [round(value, 2) for value in os.getloadavg()]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        photos = Path(scratch) / "photos"
        write_photos(photos, args.side)
        for workers in (1, 2):
            out = Path(scratch) / f"w{workers}"
            options = ["--num", str(args.num), "--side", str(args.side)]
            result = in_subprocess("runner", str(photos), str(out), str(workers), *options)
            rows.append({"name": f"vzero runner, {workers} worker{'s' * (workers > 1)}", **result})
        stages = in_subprocess("stages", str(photos), "--num", str(args.num), "--side", str(args.side))
    load = {"before": load_before, "after": [round(value, 2) for value in os.getloadavg()]}

    table = Table(title=f"real-photo pairs, {args.side} px, {args.num} pairs (load {load['before']})")
    for column in ("configuration", "pairs/s", "CPU-s/pair", "peak RSS MiB"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['pairs'] / row['wall_s']:.1f}",
            f"{row['cpu_s'] / row['pairs']:.4f}",
            f"{row['peak_rss_mib']:.0f}",
        )
    console = Console()
    console.print(table)
    for name, value in {**stages["ms_per_photo"], **stages["ms_per_pair"]}.items():
        console.print(f"  {name}: {value:.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "realworld.md").write_text(markdown(rows, stages, args.num, args.side, load))
    summary = {"num": args.num, "side": args.side, "load_average": load, "rows": rows, "stages": stages}
    (RESULTS / "realworld.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
