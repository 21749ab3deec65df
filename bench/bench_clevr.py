"""Benchmark: CLEVR pairs per second with the vzero runner against the naive way, at 320x240 and 480x320.

The naive way is how most CLEVR-pair scripts work: a fresh Blender process per image (import bpy, build the
scene, render, denoise, save a PNG), the spy rendered whole. It renders exactly the scenes the runner made
(both scene graphs are in each record's `meta`), so both sides draw the same pairs. Its whole spy renders also
check the runner's spy: every pixel they change by more than 8 levels must lie in the record's mask and boxes,
and outside the mask they may differ from the civilian only by changes below the mask's threshold.

Also measured: the share of the frame the runner renders again per pair (its regions, each once), the PSNR
of the default civilian render against a 512-spp reference of the same scene, and whether the 1-worker and
2-worker runs wrote the same bytes.

Each configuration runs in its own subprocess so that CPU time (self + reaped children) and peak RSS are
that configuration's alone. Prints a table and writes `bench/results/clevr.{md,json}` (not with --quick).

    python bench/bench_clevr.py [--num 50] [--naive-num 20] [--psnr-num 4] [--sizes 320x240,480x320] [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import benchkit

REFERENCE_SAMPLES = 512
"""Samples per pixel of the reference the default civilian render is measured against (denoised alike)."""


def measure_runner(out: Path, num: int, workers: int, width: int, height: int) -> dict:
    from clevr_scenes.domain import DOMAIN, ClevrConfig

    summary, clock = benchkit.timed_run(DOMAIN, ClevrConfig(width=width, height=height), out, num, workers, num)
    return {"pairs": summary.records_made, "retried": summary.retried, **clock.as_dict()}


def render_one(scene_json: str, png: str, width: int, height: int) -> None:
    """The naive baseline's unit of work, run as a fresh process: one whole image of one scene."""
    from PIL import Image

    from clevr_scenes.blender import BlenderRenderer, RenderSettings
    from clevr_scenes.film import Denoiser, develop
    from clevr_scenes.scene import Scene

    renderer = BlenderRenderer(RenderSettings(width, height))
    layers = renderer.render(Scene.from_json(json.loads(Path(scene_json).read_text())))
    Image.fromarray(develop(layers, Denoiser())).save(png)
    renderer.close()


def measure_naive(dataset: Path, num: int, width: int, height: int) -> dict:
    """Render the first `num` pairs of `dataset` the naive way; check the runner's spy against its whole spy."""
    import numpy as np
    import pyarrow.parquet as pq
    from PIL import Image

    from clevr_scenes.composite import CLEAR_CHANGE
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
    checks = {"clear_outside_mask": 0, "clear_outside_boxes": 0, "outside_mask_max": 0, "civilian_rerender_max": 0}
    inside = []
    for row, (civilian, whole_spy) in zip(rows, renders):
        decoded = {name: np.asarray(Image.open(io.BytesIO(row[name]["bytes"]))) for name in ("civilian", "spy")}
        mask = np.asarray(Image.open(io.BytesIO(row["diff_mask"]["bytes"]))) > 0
        boxed = np.zeros(mask.shape, bool)
        for x0, y0, x1, y1 in row["diff_boxes"]:
            boxed[y0:y1, x0:x1] = True
        change = np.abs(whole_spy.astype(np.int16) - decoded["civilian"]).max(axis=2)
        checks["clear_outside_mask"] += int((change[~mask] > CLEAR_CHANGE).sum())
        checks["clear_outside_boxes"] += int((change[~boxed] > CLEAR_CHANGE).sum())
        checks["outside_mask_max"] = max(checks["outside_mask_max"], int(change[~mask].max(initial=0)))
        composite_error = np.abs(whole_spy.astype(np.int16) - decoded["spy"]).max(axis=2)
        inside.append(composite_error[mask])
        checks["civilian_rerender_max"] = max(
            checks["civilian_rerender_max"], int(np.abs(civilian.astype(np.int16) - decoded["civilian"]).max())
        )
    mean = float(np.concatenate(inside).mean())
    return {"pairs": len(rows), **clock.as_dict(), **checks, "inside_mask_mean_abs_diff": mean}


def measure_psnr(dataset: Path, num: int, width: int, height: int) -> dict:
    """PSNR of the default civilian render of the first `num` pairs against REFERENCE_SAMPLES spp of each."""
    import numpy as np
    import pyarrow.parquet as pq

    from clevr_scenes.blender import BlenderRenderer, RenderSettings
    from clevr_scenes.film import Denoiser, develop
    from clevr_scenes.scene import Scene

    metas = [json.loads(meta) for path in sorted((dataset / "data").glob("*.parquet"))
             for meta in pq.read_table(path, columns=["meta"]).column("meta").to_pylist()][:num]  # fmt: skip
    renderer, denoiser = BlenderRenderer(RenderSettings(width, height)), Denoiser()
    values = []
    for meta in metas:
        scene = Scene.from_json(meta["civilian"])
        image = develop(renderer.render(scene), denoiser).astype(np.float64)
        reference = develop(renderer.render(scene, samples=REFERENCE_SAMPLES), denoiser)
        values.append(10 * math.log10(255**2 / float(np.mean((image - reference) ** 2))))
    return {"psnr_db": values}


def region_share(dataset: Path) -> float:
    """Mean fraction of the frame the runner rendered again for the spy per pair (each region once)."""
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


def markdown(rows: list[dict], checks: list[dict], args: argparse.Namespace, load: tuple[list, list]) -> str:
    from clevr_scenes.composite import CLEAR_CHANGE

    lines = [
        f"CLEVR pairs, {args.num} pairs per runner row, {args.naive_num} per naive row; {benchkit.machine()}. "
        "Defaults: 8 spp, OpenImageDenoise (fast), color+shape x 2, 4-6 objects. "
        f"Load average before / after: {load[0]} / {load[1]} (a shared, busy machine).",
        "",
        "| size | configuration | pairs/s | CPU-s per pair | peak RSS (largest process) |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        rate, cost, rss = benchkit.rate_cells(row, rate=".2f", cost=".2f")
        lines.append(f"| {row['size']} | {row['name']} | {rate} | {cost} | {rss} MiB |")
    lines += ["", "The spy's region renders, checked against the naive whole spy renders:", ""]
    for check in checks:
        size, naive = check["size"], check["naive"]
        lines.append(
            f"- {size}: the spy is rendered again on {check['region_share']:.0%} of the frame per pair on average "
            f"(its regions, once each); the naive way costs {naive_ratio(rows, size):.2f}x the runner's CPU time. "
            f"1 and 2 workers wrote {'byte-identical' if check['same_bytes'] else 'DIFFERENT'} shards."
        )
        lines.append(
            f"- {size}, {naive['pairs']} whole spy renders: {naive['clear_outside_mask']} pixels they change by more "
            f"than {CLEAR_CHANGE} levels lie outside diff_mask, {naive['clear_outside_boxes']} outside every box; "
            f"outside the mask they differ from the civilian by at most {naive['outside_mask_max']} levels, inside "
            f"it from the composite by {naive['inside_mask_mean_abs_diff']:.2f} levels on average. The civilian "
            f"rendered again in a fresh process differs from the record's by at most "
            f"{naive['civilian_rerender_max']} levels."
        )
        if "psnr_db" in check:
            values = check["psnr_db"]
            lines.append(
                f"- {size}: PSNR of the default civilian render against {REFERENCE_SAMPLES} spp of the same scene "
                f"(both denoised alike), {len(values)} scenes: mean {sum(values) / len(values):.1f} dB, "
                f"min {min(values):.1f} dB (goal >= 40 dB)."
            )
    return "\n".join(lines) + "\n"


def measure(args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.size.split("x"))
    mode, target, *rest = args.measure
    if mode == "runner":
        result = measure_runner(Path(target), args.num, int(rest[0]), width, height)
        result["region_share"] = region_share(Path(target))
    elif mode == "psnr":
        result = measure_psnr(Path(target), args.psnr_num, width, height)
    else:
        result = measure_naive(Path(target), args.naive_num, width, height)
    benchkit.reply(result)


def main() -> None:
    parser = benchkit.argument_parser(__doc__)
    parser.add_argument("--num", type=int, default=50)
    parser.add_argument("--naive-num", type=int, default=20, help="pairs rendered the naive way (its cost per pair)")
    parser.add_argument("--psnr-num", type=int, default=4, help="scenes measured against the reference (first size)")
    parser.add_argument("--sizes", default="320x240,480x320")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 pairs at 160x120, nothing written")
    parser.add_argument("--size", default="320x240", help=argparse.SUPPRESS)
    parser.add_argument("--render-one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.num, args.naive_num, args.psnr_num, args.sizes = 4, 2, 1, "160x120"
    if args.render_one:
        width, height = (int(v) for v in args.size.split("x"))
        render_one(*args.render_one, width, height)
        return
    if args.measure:
        measure(args)
        return

    from datagen.files import files_digest

    load_before = benchkit.load_average()
    rows, checks = [], []
    common = ["--num", str(args.num), "--naive-num", str(args.naive_num), "--psnr-num", str(args.psnr_num)]
    with tempfile.TemporaryDirectory() as scratch:
        for position, size in enumerate(args.sizes.split(",")):
            made = {}
            for workers in (1, 2):
                made[workers] = Path(scratch) / f"{size}-w{workers}"
                result = benchkit.in_subprocess(
                    __file__, "runner", str(made[workers]), str(workers), "--size", size, *common
                )
                rows.append({"size": size, "name": benchkit.runner_name(workers), **result})
            naive = benchkit.in_subprocess(__file__, "naive", str(made[2]), "--size", size, *common)
            rows.append({"size": size, "name": "naive: fresh Blender process per image, spy rendered whole", **naive})
            check = {"size": size, "region_share": rows[-3]["region_share"], "naive": naive}
            check["same_bytes"] = files_digest(made[1] / "data") == files_digest(made[2] / "data")
            if position == 0:
                check.update(benchkit.in_subprocess(__file__, "psnr", str(made[1]), "--size", size, *common))
            checks.append(check)
    load = (load_before, benchkit.load_average())

    benchkit.show_table(
        f"CLEVR pairs, {args.num} pairs (naive: {args.naive_num}), load {load[0]} -> {load[1]}",
        ("size", "configuration", "pairs/s", "CPU-s/pair", "peak RSS MiB"),
        [(row["size"], row["name"], *benchkit.rate_cells(row, rate=".2f", cost=".2f")) for row in rows],
        left=("size", "configuration"),
    )
    text = markdown(rows, checks, args, load)
    print(text.split("\n\n", 2)[-1])
    if args.quick:
        return
    payload = {"num": args.num, "naive_num": args.naive_num, "load_average": load, "rows": rows, "checks": checks}
    benchkit.write_results("clevr", text, payload)


if __name__ == "__main__":
    main()
