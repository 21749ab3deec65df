"""Benchmark: real-photo pairs per second with the vzero runner (1 and 2 workers), and where the time goes.

The photos are the built-in ones (scikit-image's) enlarged to 1024 pixels on the long side and saved as
JPEG in a scratch folder, so that decoding, region proposals, edits and PNG encoding all work at the
size the issue asks about. The `--pairs` rows read a local Hub-layout editing dataset made from the same
photos: each before image with an ellipse painted in and the whole after image re-encoded as JPEG (as an
editing model's output differs everywhere), no mask, so the change mask is computed; it is cached once
before the rows are timed. Each runner configuration runs in its own subprocess so that CPU time (self
+ reaped workers) and peak RSS are that configuration's alone. A last subprocess times the stages of
one pair in a single process and counts how often the seam check refuses each edit kind. The load
average is recorded, since the machine may be shared.
Prints a table and writes `bench/results/realworld.{md,json}`.

    python bench/bench_realworld.py [--num 300] [--side 1024]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import benchkit

STAGE_PAIRS = 60
SHARD_SIZE = 100
"""As `vzero realworld` defaults to: the parent holds a shard's encoded pairs (~1 MB each at 1024 px)."""


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


def write_edit_pairs(folder: Path, photos: Path, count: int) -> None:
    """A local editing dataset in Hub layout (HQ-Edit's columns): `count` before/after JPEG pairs of `photos`."""
    import cv2
    import datasets
    import numpy as np

    files = sorted(photos.glob("*.jpg"))
    rng = np.random.default_rng(0)
    rows: dict[str, list] = {"input_image": [], "output_image": [], "edit": []}
    for index in range(count):
        before = cv2.imread(str(files[index % len(files)]))
        after = before.copy()
        height, width = before.shape[:2]
        centre = (int(rng.integers(width // 5, 4 * width // 5)), int(rng.integers(height // 5, 4 * height // 5)))
        axes = (int(rng.integers(width // 20, width // 8)), int(rng.integers(height // 20, height // 8)))
        cv2.ellipse(after, centre, axes, float(rng.uniform(0, 180)), 0, 360, rng.integers(0, 256, 3).tolist(), -1)
        for key, image in (("input_image", before), ("output_image", after)):
            rows[key].append({"bytes": cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()})
        rows["edit"].append(f"add an ellipse number {index}")
    features = datasets.Features(
        {"input_image": datasets.Image(), "output_image": datasets.Image(), "edit": datasets.Value("string")}
    )
    (folder / "data").mkdir(parents=True)
    table = datasets.Dataset.from_dict(rows, features=features)
    table.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))


def pairs_config(pairs: Path, side: int):
    from realworld_edit.domain import RealworldConfig

    return RealworldConfig(
        pairs=str(pairs), before_column="input_image", after_column="output_image", instruction_column="edit",
        max_side=side,
    )  # fmt: skip


def measure_pairs(out: Path, pairs: Path, workers: int, side: int) -> dict:
    from realworld_edit.domain import DOMAIN, open_edit_pairs

    config = pairs_config(pairs, side)
    num = len(open_edit_pairs(config))
    summary, clock = benchkit.timed_run(DOMAIN, config, out, num, workers, SHARD_SIZE)
    return {"pairs": summary.records_made, "attempts_retried": summary.retried, **clock.as_dict()}


def seam_refusals(source, side: int) -> dict[str, dict[str, int]]:
    """Per edit kind: edits made on every proposed region of every photo, and how many the seam check refused."""
    import numpy as np

    from datagen.errors import QualityRejected
    from realworld_edit.blending import merged
    from realworld_edit.edits import EDIT_KINDS, EditContext
    from realworld_edit.regions import propose_regions
    from realworld_edit.seams import seam_problem

    counts = {kind: {"made": 0, "refused": 0} for kind in EDIT_KINDS}
    for index in range(len(source)):
        pixels = source.load(index).pixels
        feather = max(2, round(0.005 * side))
        for region in propose_regions(pixels):
            for kind, edit in EDIT_KINDS.items():
                context = EditContext(pixels, np.zeros(pixels.shape[:2], bool), np.random.default_rng(index), feather)
                try:
                    outcome = edit.make(context, region)
                except QualityRejected:
                    continue
                counts[kind]["made"] += 1
                counts[kind]["refused"] += bool(seam_problem(pixels, merged(pixels, outcome.patches), feather))
    return counts


def measure_runner(out: Path, photos: Path, num: int, workers: int, side: int) -> dict:
    from realworld_edit.domain import DOMAIN, RealworldConfig

    config = RealworldConfig(source=str(photos), max_side=side)
    summary, clock = benchkit.timed_run(DOMAIN, config, out, num, workers, SHARD_SIZE)
    return {"pairs": summary.records_made, "attempts_retried": summary.retried, **clock.as_dict()}


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
            "edits, compositing, seam check, diff mask (photo cached)": 1000 * edit / made,
            "quality gate": 1000 * check / made,
            "PNG encoding (civilian, spy, mask)": 1000 * encode / made,
        },
        "seam_check": seam_refusals(source, side),
    }


def markdown(rows: list[dict], stages: dict, num: int, side: int, load: dict) -> str:
    lines = [
        f"Real-photo pairs from {side}-px photos (the built-in photos enlarged), {num} pairs per row; "
        f"{benchkit.machine()}. Load average before / after: {load['before']} / {load['after']}"
        " (the machine was shared: other jobs' load slows every row).",
        "",
        "| configuration | pairs/s | CPU-s per pair | peak RSS (largest process) | attempts retried |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        rate, cost, rss = benchkit.rate_cells(row)
        lines.append(f"| {row['name']} | {rate} | {cost} | {rss} MiB | {row['attempts_retried']} |")
    lines += ["", f"Where the time goes (one process, {stages['pairs']} pairs from {stages['photos']} photos):", ""]
    lines += ["| stage | ms |", "|---|---:|"]
    for name, value in stages["ms_per_photo"].items():
        lines.append(f"| {name}, per photo | {value:.1f} |")
    for name, value in stages["ms_per_pair"].items():
        lines.append(f"| {name}, per pair | {value:.1f} |")
    lines += ["", "Seam check: edits made on every proposed region of every photo, and how many it refused:", ""]
    lines += ["| edit kind | made | refused | share |", "|---|---:|---:|---:|"]
    for kind, count in stages["seam_check"].items():
        share = count["refused"] / count["made"] if count["made"] else 0.0
        lines.append(f"| {kind} | {count['made']} | {count['refused']} | {share:.0%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = benchkit.argument_parser(__doc__)
    parser.add_argument("--num", type=int, default=300)
    parser.add_argument("--side", type=int, default=1024)
    args = parser.parse_args()
    if args.measure:
        mode, photos, *rest = args.measure
        if mode == "runner":
            result = measure_runner(Path(rest[0]), Path(photos), args.num, int(rest[1]), args.side)
        elif mode == "pairs":
            result = measure_pairs(Path(rest[0]), Path(photos), int(rest[1]), args.side)
        else:
            result = measure_stages(Path(photos), min(args.num, STAGE_PAIRS), args.side)
        benchkit.reply(result)
        return

    load_before = benchkit.load_average()
    rows = []
    options = ["--num", str(args.num), "--side", str(args.side)]
    with tempfile.TemporaryDirectory() as scratch:
        photos = Path(scratch) / "photos"
        write_photos(photos, args.side)
        for workers in (1, 2):
            out = Path(scratch) / f"w{workers}"
            result = benchkit.in_subprocess(__file__, "runner", str(photos), str(out), str(workers), *options)
            rows.append({"name": benchkit.runner_name(workers), **result})
        pairs = Path(scratch) / "edit-pairs"
        write_edit_pairs(pairs, photos, args.num)
        os.environ["VZERO_CACHE"] = str(Path(scratch) / "cache")
        from realworld_edit.domain import open_edit_pairs

        open_edit_pairs(pairs_config(pairs, args.side))
        for workers in (1, 2):
            out = Path(scratch) / f"pairs{workers}"
            result = benchkit.in_subprocess(__file__, "pairs", str(pairs), str(out), str(workers), *options)
            rows.append({"name": f"{benchkit.runner_name(workers)}, --pairs", **result})
        stages = benchkit.in_subprocess(__file__, "stages", str(photos), *options)
    load = {"before": load_before, "after": benchkit.load_average()}

    benchkit.show_table(
        f"real-photo pairs, {args.side} px, {args.num} pairs (load {load['before']})",
        ("configuration", "pairs/s", "CPU-s/pair", "peak RSS MiB"),
        [(row["name"], *benchkit.rate_cells(row)) for row in rows],
        left=("configuration",),
        notes=[
            f"  {name}: {value:.1f} ms" for name, value in {**stages["ms_per_photo"], **stages["ms_per_pair"]}.items()
        ],
    )
    summary = {"num": args.num, "side": args.side, "load_average": load, "rows": rows, "stages": stages}
    benchkit.write_results("realworld", markdown(rows, stages, args.num, args.side, load), summary)


if __name__ == "__main__":
    main()
