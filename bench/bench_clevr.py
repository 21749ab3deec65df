"""Benchmark: CLEVR pairs per second with the vzero runner against the naive way, at 320x240 and 480x320.

The naive way is how most CLEVR-pair scripts work: a fresh Blender process per image (import bpy, build the
scene, render, save a PNG), the spy re-rendered whole. It renders exactly the scenes the runner made (both
scene graphs are in each record's `meta`), so both sides draw the same pairs. Its full spy renders also
measure what the runner's region renders leave out: differences outside the regions (render noise only,
if the regions are right) and the denoiser's context noise inside `diff_mask`.

Each configuration runs in its own subprocess so that CPU time (self + reaped children) and peak RSS are
that configuration's alone. Prints a table and writes `bench/results/clevr.{md,json}` (not with --quick).

    python bench/bench_clevr.py [--num 50] [--naive-num 20] [--sizes 320x240,480x320] [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import benchkit


def measure_runner(out: Path, num: int, workers: int, width: int, height: int) -> dict:
    from clevr_scenes.domain import DOMAIN, ClevrConfig

    summary, clock = benchkit.timed_run(DOMAIN, ClevrConfig(width=width, height=height), out, num, workers, num)
    return {"pairs": summary.records_made, "retried": summary.retried, **clock.as_dict()}


def render_one(scene_json: str, png: str, width: int, height: int) -> None:
    """The naive baseline's unit of work, run as a fresh process: one whole image of one scene."""
    from PIL import Image

    from clevr_scenes.blender import BlenderRenderer, RenderSettings
    from clevr_scenes.scene import Scene

    renderer = BlenderRenderer(RenderSettings(width, height))
    Image.fromarray(renderer.render(Scene.from_json(json.loads(Path(scene_json).read_text()))).rgb).save(png)
    renderer.close()


def measure_naive(dataset: Path, num: int, width: int, height: int) -> dict:
    """Render the first `num` pairs of `dataset` the naive way; compare its full spy renders with the runner's."""
    import numpy as np
    import pyarrow.parquet as pq
    from PIL import Image

    from clevr_scenes.region import Region
    from datagen.record import png_bytes

    rows = [row for path in sorted((dataset / "data").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    rows = rows[:num]
    renders = []
    with benchkit.Stopwatch() as clock, tempfile.TemporaryDirectory() as scratch:
        for i, row in enumerate(rows):
            meta = json.loads(row["meta"])
            images = []
            for side in ("civilian", "spy"):
                scene_path, png = Path(scratch) / f"{i}-{side}.json", Path(scratch) / f"{i}-{side}.png"
                scene_path.write_text(json.dumps(meta[side]))
                command = [
                    sys.executable,
                    __file__,
                    "--render-one",
                    str(scene_path),
                    str(png),
                    "--size",
                    f"{width}x{height}",
                ]
                subprocess.run(command, check=True, capture_output=True)
                images.append(np.asarray(Image.open(png).convert("RGB")))
            png_bytes((images[0] != images[1]).any(axis=2))
            renders.append(images)
    outside, context = [], []
    for row, (_, full_spy) in zip(rows, renders):
        spy = np.asarray(Image.open(io.BytesIO(row["spy"]["bytes"])).convert("RGB")).astype(np.int16)
        civilian = np.asarray(Image.open(io.BytesIO(row["civilian"]["bytes"])).convert("RGB")).astype(np.int16)
        mask = np.asarray(Image.open(io.BytesIO(row["diff_mask"]["bytes"]))) > 0
        covered = np.zeros(mask.shape, bool)
        for box in json.loads(row["meta"])["render"]["regions"]:
            covered[Region(*box).slices] = True
        outside.append(np.abs(full_spy - civilian).max(axis=2)[~covered])
        context.append(np.abs(full_spy - spy).max(axis=2)[mask])
    missed, noise = np.concatenate(outside), np.concatenate(context)
    return {
        "pairs": len(rows),
        **clock.as_dict(),
        "outside_regions_max_diff": int(missed.max()) if missed.size else 0,
        "outside_regions_pixels_over_6": int((missed > 6).sum()),
        "outside_regions_pixels": int(missed.size),
        "inside_mask_mean_abs_diff": float(noise.mean()) if noise.size else 0.0,
    }


def region_share(dataset: Path) -> float:
    """Mean fraction of the frame the runner re-rendered (twice) per pair."""
    import pyarrow.parquet as pq

    shares = []
    for path in sorted((dataset / "data").glob("*.parquet")):
        for meta in pq.read_table(path, columns=["meta"]).column("meta").to_pylist():
            meta = json.loads(meta)
            width, height = meta["civilian"]["image_size"]
            area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in meta["render"]["regions"])
            shares.append(area / (width * height))
    return sum(shares) / len(shares)


def naive_ratio(rows: list[dict], size: str) -> float:
    """CPU-s per pair of the naive way over the 1-worker runner's, at `size`."""
    per_pair = {row["name"]: row["cpu_s"] / row["pairs"] for row in rows if row["size"] == size}
    naive = next(value for name, value in per_pair.items() if name.startswith("naive"))
    return naive / per_pair[benchkit.runner_name(1)]


def markdown(rows: list[dict], args: argparse.Namespace, load: tuple[list[float], list[float]]) -> str:
    lines = [
        f"CLEVR pairs, {args.num} pairs per runner row, {args.naive_num} per naive row; {benchkit.machine()}. "
        "Defaults: 8 spp + OpenImageDenoise (fast prefilter), color+shape x 2, "
        f"4-6 objects. Load average before / after: {load[0]} / {load[1]} (a shared, busy machine).",
        "",
        "| size | configuration | pairs/s | CPU-s per pair | peak RSS (largest process) |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        rate, cost, rss = benchkit.rate_cells(row, rate=".2f", cost=".2f")
        lines.append(f"| {row['size']} | {row['name']} | {rate} | {cost} | {rss} MiB |")
    lines += ["", "Region renders and their check against the naive full spy renders:", ""]
    for row in rows:
        if "region_share" in row and row["name"].endswith("1 worker"):
            lines.append(
                f"- {row['size']}: the regions cover {row['region_share']:.0%} of the frame on average (each rendered "
                f"for both scenes); the naive way costs {naive_ratio(rows, row['size']):.2f}x the runner's CPU time."
            )
        if "outside_regions_max_diff" in row:
            lines.append(
                f"- {row['size']}: outside the regions the full spy render differs from the civilian by at most "
                f"{row['outside_regions_max_diff']} levels ({row['outside_regions_pixels_over_6']} of "
                f"{row['outside_regions_pixels']} pixels above 6); inside diff_mask the composite differs from it "
                f"by {row['inside_mask_mean_abs_diff']:.2f} levels on average (denoiser context)."
            )
    return "\n".join(lines) + "\n"


def measure(args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.size.split("x"))
    mode, target, *rest = args.measure
    if mode == "runner":
        result = measure_runner(Path(target), args.num, int(rest[0]), width, height)
        result["region_share"] = region_share(Path(target))
    else:
        result = measure_naive(Path(target), args.naive_num, width, height)
    benchkit.reply(result)


def main() -> None:
    parser = benchkit.argument_parser(__doc__)
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--naive-num", type=int, default=20, help="pairs rendered the naive way (its cost per pair)")
    parser.add_argument("--sizes", default="320x240,480x320")
    parser.add_argument("--workers", default="1,2", help="worker counts to run the runner with")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 pairs at 160x120, nothing written")
    parser.add_argument("--size", default="320x240", help=argparse.SUPPRESS)
    parser.add_argument("--render-one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.num, args.naive_num, args.sizes, args.workers = 4, 2, "160x120", "2"
    if args.render_one:
        width, height = (int(v) for v in args.size.split("x"))
        render_one(*args.render_one, width, height)
        return
    if args.measure:
        measure(args)
        return

    load_before = benchkit.load_average()
    rows = []
    common = ["--num", str(args.num), "--naive-num", str(args.naive_num)]
    with tempfile.TemporaryDirectory() as scratch:
        for size in args.sizes.split(","):
            made = None
            for workers in (int(w) for w in args.workers.split(",")):
                out = Path(scratch) / f"{size}-w{workers}"
                result = benchkit.in_subprocess(__file__, "runner", str(out), str(workers), "--size", size, *common)
                rows.append({"size": size, "name": benchkit.runner_name(workers), **result})
                made = out
            result = benchkit.in_subprocess(__file__, "naive", str(made), "--size", size, *common)
            rows.append({"size": size, "name": "naive: fresh Blender process per image, spy rendered whole", **result})
    load = (load_before, benchkit.load_average())

    benchkit.show_table(
        f"CLEVR pairs, {args.num} pairs (naive: {args.naive_num}), load {load[0]} -> {load[1]}",
        ("size", "configuration", "pairs/s", "CPU-s/pair", "peak RSS MiB"),
        [(row["size"], row["name"], *benchkit.rate_cells(row, rate=".2f", cost=".2f")) for row in rows],
        left=("size", "configuration"),
    )
    text = markdown(rows, args, load)
    print(text.split("\n\n", 2)[-1])
    if args.quick:
        return
    payload = {"num": args.num, "naive_num": args.naive_num, "load_average": load, "rows": rows}
    benchkit.write_results("clevr", text, payload)


if __name__ == "__main__":
    main()
