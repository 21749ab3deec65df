"""Benchmark: chart pairs per second with the vzero runner (1 and 2 workers) against a naive baseline.

The naive baseline is how most chart-pair scripts work: for each image a new pyplot figure, a full draw
and `savefig`, then decode both PNGs to diff them. It re-renders exactly the pairs the runner made (their
specs are in each record's `meta`), so both sides draw the same charts.

Each configuration runs in its own subprocess so that CPU time (self + reaped workers) and peak RSS are
that configuration's alone. Prints a table and writes `bench/results/chart.{md,json}`.

    python bench/bench_chart.py [--num 500] [--size 640x480]
"""

from __future__ import annotations

import argparse
import io
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


def usage() -> tuple[float, float]:
    """(CPU seconds of this process and its reaped children, peak RSS in MiB of the largest of them)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, max(own.ru_maxrss, children.ru_maxrss) / 1024


def measure_runner(out: Path, num: int, workers: int, width: int, height: int) -> dict:
    from chart_edit.domain import DOMAIN, ChartConfig
    from datagen.runner import RunOptions, run

    cpu_before, _ = usage()
    started = time.perf_counter()
    summary = run(
        DOMAIN,
        ChartConfig(width=width, height=height),
        RunOptions(out=out, num=num, seed=0, workers=workers, shard_size=num),
    )
    wall = time.perf_counter() - started
    cpu, rss = usage()
    return {"pairs": summary.records_made, "wall_s": wall, "cpu_s": cpu - cpu_before, "peak_rss_mib": rss}


def measure_naive(dataset: Path, num: int, width: int, height: int) -> dict:
    import numpy as np
    import pyarrow.parquet as pq
    from PIL import Image

    from chart_edit.render import render_png_naive
    from chart_edit.spec import ChartSpec
    from datagen.record import png_bytes

    metas = [
        json.loads(m)
        for p in sorted((dataset / "data").glob("*.parquet"))
        for m in pq.read_table(p, columns=["meta"]).column("meta").to_pylist()
    ][:num]
    specs = [(ChartSpec.from_json(m["civilian"]), ChartSpec.from_json(m["spy"])) for m in metas]
    cpu_before, _ = usage()
    started = time.perf_counter()
    for civilian_spec, spy_spec in specs:
        civilian = np.asarray(Image.open(io.BytesIO(render_png_naive(civilian_spec, width, height))).convert("RGB"))
        spy = np.asarray(Image.open(io.BytesIO(render_png_naive(spy_spec, width, height))).convert("RGB"))
        png_bytes((civilian != spy).any(axis=2))
    wall = time.perf_counter() - started
    cpu, rss = usage()
    return {"pairs": len(specs), "wall_s": wall, "cpu_s": cpu - cpu_before, "peak_rss_mib": rss}


def in_subprocess(*arguments: str) -> dict:
    """Run this script in `--measure` mode and return the JSON it prints."""
    result = subprocess.run(
        [sys.executable, __file__, "--measure", *arguments], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], num: int, size: str) -> str:
    lines = [
        f"Chart pairs at {size}, {num} pairs per row; {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}.",
        "",
        "| configuration | pairs/s | CPU-s per pair | peak RSS (largest process) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['pairs'] / row['wall_s']:.1f} | {row['cpu_s'] / row['pairs']:.4f} | "
            f"{row['peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.measure:
        mode, target, *rest = args.measure
        result = (
            measure_runner(Path(target), args.num, int(rest[0]), width, height)
            if mode == "runner"
            else measure_naive(Path(target), args.num, width, height)
        )
        print(json.dumps(result))
        return

    from rich.console import Console
    from rich.table import Table

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 2):
            out = Path(scratch) / f"w{workers}"
            result = in_subprocess("runner", str(out), str(workers), "--num", str(args.num), "--size", args.size)
            rows.append({"name": f"vzero runner, {workers} worker{'s' * (workers > 1)}", **result})
        result = in_subprocess("naive", str(Path(scratch) / "w2"), "--num", str(args.num), "--size", args.size)
        rows.append({"name": "naive: new pyplot figure + savefig per image, 1 process", **result})

    table = Table(title=f"chart pairs, {args.size}, {args.num} pairs")
    for column in ("configuration", "pairs/s", "CPU-s/pair", "peak RSS MiB"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in rows:
        table.add_row(
            row["name"],
            f"{row['pairs'] / row['wall_s']:.1f}",
            f"{row['cpu_s'] / row['pairs']:.4f}",
            f"{row['peak_rss_mib']:.0f}",
        )
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chart.md").write_text(markdown(rows, args.num, args.size))
    (RESULTS / "chart.json").write_text(json.dumps({"num": args.num, "size": args.size, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
