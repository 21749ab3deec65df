"""Benchmark: chart pairs per second with the vzero runner (1 and 2 workers) against a naive baseline.

The naive baseline is how most chart-pair scripts work: for each image a new pyplot figure, a full draw
and `savefig`, then decode both PNGs to diff them. It re-renders exactly the pairs the runner made (their
specs are in each record's `meta`), so both sides draw the same charts.

Each configuration runs in its own subprocess so that CPU time (self + reaped workers) and peak RSS are
that configuration's alone. Prints a table and writes `bench/results/chart.{md,json}`.

    python bench/bench_chart.py [--num 500] [--size 640x480]
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import benchkit


def measure_runner(out: Path, num: int, workers: int, width: int, height: int) -> dict:
    from chart_edit.domain import DOMAIN, ChartConfig

    summary, clock = benchkit.timed_run(DOMAIN, ChartConfig(width=width, height=height), out, num, workers, num)
    return {"pairs": summary.records_made, **clock.as_dict()}


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
    with benchkit.Stopwatch() as clock:
        for civilian_spec, spy_spec in specs:
            civilian = np.asarray(Image.open(io.BytesIO(render_png_naive(civilian_spec, width, height))).convert("RGB"))
            spy = np.asarray(Image.open(io.BytesIO(render_png_naive(spy_spec, width, height))).convert("RGB"))
            png_bytes((civilian != spy).any(axis=2))
    return {"pairs": len(specs), **clock.as_dict()}


def markdown(rows: list[dict], num: int, size: str) -> str:
    lines = [
        f"Chart pairs at {size}, {num} pairs per row; {benchkit.machine()}.",
        "",
        "| configuration | pairs/s | CPU-s per pair | peak RSS (largest process) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        rate, cost, rss = benchkit.rate_cells(row)
        lines.append(f"| {row['name']} | {rate} | {cost} | {rss} MiB |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = benchkit.argument_parser(__doc__)
    parser.add_argument("--num", type=int, default=500)
    parser.add_argument("--size", default="640x480")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.measure:
        mode, target, *rest = args.measure
        benchkit.reply(
            measure_runner(Path(target), args.num, int(rest[0]), width, height)
            if mode == "runner"
            else measure_naive(Path(target), args.num, width, height)
        )
        return

    rows = []
    common = ["--num", str(args.num), "--size", args.size]
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 2):
            out = Path(scratch) / f"w{workers}"
            result = benchkit.in_subprocess(__file__, "runner", str(out), str(workers), *common)
            rows.append({"name": benchkit.runner_name(workers), **result})
        result = benchkit.in_subprocess(__file__, "naive", str(Path(scratch) / "w2"), *common)
        rows.append({"name": "naive: new pyplot figure + savefig per image, 1 process", **result})

    benchkit.show_table(
        f"chart pairs, {args.size}, {args.num} pairs",
        ("configuration", "pairs/s", "CPU-s/pair", "peak RSS MiB"),
        [(row["name"], *benchkit.rate_cells(row)) for row in rows],
        left=("configuration",),
    )
    benchkit.write_results(
        "chart", markdown(rows, args.num, args.size), {"num": args.num, "size": args.size, "rows": rows}
    )


if __name__ == "__main__":
    main()
