"""The CLEVR domain on real Blender renders at tiny sizes: the spy composite, its mask and boxes against whole
renders of the spy, byte-identical output across processes, the CLI, crashes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clevr_scenes.composite import CLEAR_CHANGE
from clevr_scenes.domain import QUALITY, ClevrConfig, make_generator
from clevr_scenes.edits import edit_scene
from clevr_scenes.film import develop
from clevr_scenes.placement import sample_scene
from clevr_scenes.region import changed_ids
from clevr_scenes.scene import Scene
from clevr_scenes.visibility import ESTIMATE_SLACK, estimated_index
from datagen.errors import ConfigError
from datagen.masks import channel_max
from datagen.record import encode_pair
from datagen.seeding import item_seed
from tests.conftest import content_hash

TINY = ClevrConfig(width=96, height=64, samples=4)
SEEDS = [item_seed(0, index) for index in range(4)]
CLI_ARGS = ["--num", "6", "--seed", "4", "--size", "96x64", "--samples", "2", "--shard-size", "2"]
VZERO = str(Path(sys.executable).parent / "vzero")
REPO = Path(__file__).parents[1]
VZERO_COMMAND = [VZERO, "clevr", *CLI_ARGS]


@pytest.fixture(scope="module")
def generator():
    generator = make_generator(TINY)
    yield generator
    generator.renderer.close()


@pytest.fixture(scope="module")
def pairs(generator):
    """Pairs of the first seeds that pass (a rejected seed is the runner's business, not these tests')."""
    made = []
    for seed in SEEDS:
        try:
            made.append((seed, generator(0, seed)))
        except Exception as error:  # noqa: BLE001 - a QualityRejected seed is simply not used here
            assert "QualityRejected" in type(error).__name__, error
    assert len(made) >= 3
    return made


def scenes(pair) -> tuple[Scene, Scene]:
    return Scene.from_json(pair.meta["civilian"]), Scene.from_json(pair.meta["spy"])


def differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`[H, W]` per-pixel largest channel difference."""
    return channel_max(cv2.absdiff(a, b))


def boxed(boxes: list[list[int]], shape: tuple[int, int]) -> np.ndarray:
    inside = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    return inside


def whole_spy(generator, pair) -> np.ndarray:
    """The spy scene rendered whole (no regions, no composite) and developed like the pair's images."""
    _, spy = scenes(pair)
    return develop(generator.renderer.render(spy), generator.denoiser)


@pytest.mark.render
def test_camera_projection_matches_blenders_world_to_camera_view(generator, pairs):
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    civilian, _ = scenes(pairs[0][1])
    generator.renderer.render(civilian)
    points = np.random.default_rng(0).uniform((-4, -4, 0), (4, 4, 2), size=(20, 3))
    points = np.concatenate([points, [obj.location for obj in civilian.objects]])
    ours = civilian.camera.project_ndc(points, TINY.width, TINY.height)
    blender = [world_to_camera_view(bpy.context.scene, bpy.context.scene.camera, Vector(p)) for p in points]
    np.testing.assert_allclose(ours, np.array([tuple(v) for v in blender]), atol=1e-5)


@pytest.mark.render
def test_the_spy_is_the_civilian_outside_the_mask_bit_for_bit(pairs):
    for _, pair in pairs:
        QUALITY.check(pair)
        outside = ~pair.diff_mask
        assert np.array_equal(pair.spy[outside], pair.civilian[outside])
        assert pair.edits and pair.description.endswith(".")
        assert {edit.op for edit in pair.edits} == {"recolor", "reshape"}


@pytest.mark.render
def test_boxes_hold_every_pixel_a_whole_render_of_the_spy_changes_clearly(generator, pairs):
    """Against the spy rendered whole (same samples, its own denoise): every pixel it changes by more than
    CLEAR_CHANGE levels lies in a box, and outside the mask the composite misses no clear change."""
    for _, pair in pairs:
        truth = whole_spy(generator, pair)
        clear = differs(truth, pair.civilian) > CLEAR_CHANGE
        assert clear.any()
        assert not (clear & ~boxed(pair.diff_boxes, clear.shape)).any(), "a clear change lies outside every box"
        assert not (clear & ~pair.diff_mask).any(), "a clear change lies outside the mask"
        composite = differs(pair.spy, pair.civilian) > CLEAR_CHANGE
        assert not (composite & ~boxed(pair.diff_boxes, clear.shape)).any()
        assert len(pair.diff_boxes) == len(pair.meta["boxes"])


@pytest.mark.render
def test_the_same_seed_gives_the_same_pair_whatever_was_made_before(generator, pairs):
    seed, first = pairs[0]
    generator(1, pairs[-1][0])
    again = generator(0, seed)
    for name in ("civilian", "spy", "diff_mask"):
        assert np.array_equal(getattr(again, name), getattr(first, name)), name
    assert again.meta == first.meta and again.diff_boxes == first.diff_boxes and again.edits == first.edits


def _rubber_pair(generator, seed: int):
    """A sampled scene with every object made rubber (nothing mirrors anything), its default edit, and the pair."""
    rng = np.random.default_rng(seed)
    sampled = sample_scene(rng, TINY.scene_config)
    civilian = replace(sampled, objects=tuple(replace(obj, material="rubber") for obj in sampled.objects))
    spy, changes = edit_scene(civilian, rng, changes=2)
    return civilian, spy, generator.pair(civilian, spy, changes)


def _shadow_volumes(civilian: Scene, spy: Scene, width: int, height: int) -> np.ndarray:
    """`[H, W]` the screen projection of each changed object's box (from Blender's own data) with its shadow
    from every corner of every lamp and 0.5 units of ground around it, written independently of region.py."""
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    pixels = np.zeros((height, width), np.uint8)
    lamps = [obj for obj in bpy.data.objects if obj.type == "LIGHT"]
    for scene in (civilian, spy):
        generator_scene = bpy.context.scene
        for object_id in changed_ids(civilian, spy):
            if object_id not in scene.ids():
                continue
            obj = scene.object(object_id)
            corners = np.array(
                [(obj.x + dx * r, obj.y + dy * r, z) for r in (obj.radius + 0.5,) for dx in (-1, 1) for dy in (-1, 1)
                 for z in (0.0, 2.0 * obj.scale)]
            )  # fmt: skip
            points = [corners]
            for lamp in lamps:
                size = lamp.data.size / 2
                for a in (-size, size):
                    for b in (-size, size):
                        source = np.array(lamp.matrix_world @ Vector((a, b, 0.0)))
                        tops = corners[corners[:, 2] > 0]
                        t = source[2] / (source[2] - tops[:, 2:])
                        points.append(source + t * (tops - source))
            world = np.concatenate(points)
            view = np.array(
                [tuple(world_to_camera_view(generator_scene, generator_scene.camera, Vector(p))) for p in world]
            )
            screen = np.column_stack([view[:, 0] * width, (1 - view[:, 1]) * height])
            cv2.fillConvexPoly(pixels, cv2.convexHull(np.round(screen * 4).astype(np.int32)), 1, shift=2)
    return pixels.astype(bool)


REFERENCE_SAMPLES = 64


@pytest.mark.render
def test_the_mask_is_the_changed_objects_and_their_shadows_not_a_noise_field(generator):
    for seed in (1, 2):
        civilian, spy, pair = _rubber_pair(generator, seed)
        ids = changed_ids(civilian, spy)
        # What really changes: both scenes at 16x the samples, where the denoised frames differ by 2 levels.
        before, after = (generator.renderer.render(scene, samples=REFERENCE_SAMPLES) for scene in (civilian, spy))
        truth = differs(develop(before, generator.denoiser), develop(after, generator.denoiser)) >= 2
        near_truth = cv2.dilate(truth.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        noise = pair.diff_mask & ~near_truth
        assert noise.sum() <= 0.01 * pair.diff_mask.sum(), f"{int(noise.sum())} mask pixels where nothing changes"
        before, after = before.index, after.index
        silhouettes = np.isin(before, ids) | np.isin(after, ids)
        assert pair.diff_mask[silhouettes].all()
        allowed = cv2.dilate(
            (silhouettes | _shadow_volumes(civilian, spy, TINY.width, TINY.height)).astype(np.uint8),
            np.ones((7, 7), np.uint8),
        ).astype(bool)
        stray = pair.diff_mask & ~allowed
        assert not stray.any(), f"{int(stray.sum())} mask pixels beyond 3 pixels of the silhouettes and shadows"
        assert pair.diff_mask.sum() > 1.2 * silhouettes.sum(), "the shadows are part of the mask"
        islands, _ = cv2.connectedComponents(pair.diff_mask.astype(np.uint8), connectivity=8)
        assert islands - 1 <= 2 * len(ids), f"{islands - 1} separate mask islands: a speckled mask"


@pytest.mark.render
def test_the_visibility_estimate_never_rejects_an_object_the_render_shows(generator, pairs):
    for _, pair in pairs:
        for scene in scenes(pair):
            rendered = np.bincount(generator.renderer.render(scene).index.ravel(), minlength=scene.next_id())
            estimate = np.bincount(estimated_index(scene, TINY.width, TINY.height).ravel(), minlength=scene.next_id())
            for obj in scene.objects:
                assert estimate[obj.id] >= ESTIMATE_SLACK * rendered[obj.id], (obj, estimate[obj.id], rendered[obj.id])


PAIR_DIGEST = """
import hashlib, json, sys
from clevr_scenes.domain import ClevrConfig, make_generator
from datagen.record import encode_pair
generator = make_generator(ClevrConfig(width=96, height=64, samples=4))
for seed in map(int, sys.argv[1:]):
    row = encode_pair(generator(0, seed), domain="clevr", run_seed=0, index=0, seed=seed)
    print(hashlib.sha256(json.dumps(row, sort_keys=True, default=lambda b: b.hex()).encode()).hexdigest())
"""


def _digest(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=lambda b: b.hex()).encode()).hexdigest()


@pytest.mark.render
def test_two_processes_give_the_same_bytes(pairs):
    seeds = [str(seed) for seed, _ in pairs[:2]]
    runs = [
        subprocess.Popen([sys.executable, "-c", PAIR_DIGEST, *order], cwd=REPO, stdout=subprocess.PIPE, text=True)
        for order in (seeds, seeds[::-1])
    ]
    outputs = [run.communicate(timeout=300)[0].split() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    here = [_digest(encode_pair(pair, domain="clevr", run_seed=0, index=0, seed=seed)) for seed, pair in pairs[:2]]
    assert outputs[0] == here and outputs[1] == here[::-1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": 8}, "width"),
        ({"samples": 0}, "samples"),
        ({"color_mode": "neon"}, "colour mode"),
        ({"device": "tpu"}, "device"),
        ({"edit_kinds": ("paint",)}, "paint"),
        ({"changes": 9}, "changes"),
        ({"min_objects": 7, "max_objects": 5}, "min_objects"),
    ],
)
def test_a_bad_config_fails_naming_the_value(change, message):
    with pytest.raises(ConfigError, match=message):
        make_generator(replace(TINY, **change))


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [(["--objects", "four"], 2, "4-6"), (["--device", "tpu"], 1, "unknown device"), (["--size", "8x8"], 1, "width")],
)
def test_bad_clevr_options_fail_before_any_work(tmp_path, options, code, message):
    from typer.testing import CliRunner

    from cli import app

    out = tmp_path / "never"
    result = CliRunner().invoke(app, ["clevr", "--out", str(out), "--num", "2", *options])
    assert result.exit_code == code and message in result.output, result.output
    assert not out.exists()


@pytest.fixture(scope="module")
def cli_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clevr") / "ds"
    result = subprocess.run([*VZERO_COMMAND, "--out", str(out), "--workers", "2"], cwd=REPO, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.render
def test_the_cli_writes_a_dataset_that_datasets_loads(cli_dataset):
    import datasets

    rows = datasets.load_dataset(str(cli_dataset), split="train")
    manifest = json.loads((cli_dataset / "manifest.json").read_text())
    assert manifest["complete"] and len(rows) == 6 - manifest["counts"]["skipped"] >= 5
    row = rows[0]
    assert row["domain"] == "clevr" and row["civilian"].size == (96, 64) and row["diff_mask"].mode == "L"
    meta = json.loads(row["meta"])
    assert {"civilian", "spy", "changes", "render"} <= set(meta)
    assert len(meta["civilian"]["objects"]) >= 4 and meta["render"]["samples"] == 2
    assert "--samples 2" in manifest["command"]
    assert (cli_dataset / "preview.png").exists() and (cli_dataset / "README.md").exists()
    rows = [row for path in sorted((cli_dataset / "data").glob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    for row in rows:
        decoded = {name: np.asarray(Image.open(io.BytesIO(row[name]["bytes"]))) for name in ("civilian", "spy")}
        mask = np.asarray(Image.open(io.BytesIO(row["diff_mask"]["bytes"]))) > 0
        assert np.array_equal(decoded["spy"][~mask], decoded["civilian"][~mask])


def _workers(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(child) for child in children.read_text().split()] if children.exists() else []
    return [child for child in pids if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()]


def _pairs_done(out: Path) -> int:
    try:
        return json.loads((out / "manifest.json").read_text())["counts"]["written"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.mark.render
def test_a_killed_worker_a_resume_and_one_worker_instead_of_two_give_the_same_bytes(tmp_path, cli_dataset):
    out = tmp_path / "killed"
    process = subprocess.Popen([*VZERO_COMMAND, "--out", str(out), "--workers", "1"], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 300
    while _pairs_done(out) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _workers(process.pid)
    assert workers and process.poll() is None, "the run finished before a worker could be killed"
    os.kill(workers[0], signal.SIGKILL)
    assert process.wait(timeout=600) == 0, process.stderr.read().decode()
    assert json.loads((out / "manifest.json").read_text())["complete"]
    assert content_hash(out) == content_hash(cli_dataset)
    # Resume: a lost shard is made again, the same bytes.
    sorted((out / "data").glob("*.parquet"))[1].unlink()
    subprocess.run([*VZERO_COMMAND, "--out", str(out), "--workers", "1"], cwd=REPO, check=True, capture_output=True)
    assert content_hash(out) == content_hash(cli_dataset)
