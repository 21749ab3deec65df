"""Pairs from image-editing datasets (`vzero realworld --pairs`): MagicBrush and HQ-Edit layouts with known edits."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from datagen.errors import ConfigError, UnusableItem
from datagen.seeding import item_seed
from realworld_edit.change_mask import computed_mask
from realworld_edit.domain import RealworldConfig, make_generator
from realworld_edit.sources import open_source
from realworld_edit.wording import instruction_kind, instruction_sentence

runner = CliRunner()
SIDE = 192


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Real photographs (the built-in ones) at `SIDE` px, as the before images."""
    source = open_source(None, max_side=SIDE)
    return [source.load(index).pixels for index in (1, 2, 3, 4)]


def known_edit(
    before: np.ndarray, centre: tuple[int, int], axes: tuple[int, int], colour
) -> tuple[np.ndarray, np.ndarray]:
    """(after image, true edit mask): a filled ellipse painted in, then the whole image re-encoded as an editing
    model's autoencoder would (JPEG at quality 92 plus noise of a few levels), so that it differs everywhere."""
    edited = before.copy()
    cv2.ellipse(edited, centre, axes, 0, 0, 360, colour, thickness=-1)
    truth = np.zeros(before.shape[:2], np.uint8)
    cv2.ellipse(truth, centre, axes, 0, 0, 360, 1, thickness=-1)
    buffer = io.BytesIO()
    Image.fromarray(edited).save(buffer, format="JPEG", quality=92)
    reencoded = np.asarray(Image.open(buffer).convert("RGB")).astype(np.int16)
    noise = np.random.default_rng(sum(centre)).integers(-2, 3, reencoded.shape)
    return np.clip(reencoded + noise, 0, 255).astype(np.uint8), truth.astype(bool)


def png(pixels: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def write_hub_folder(folder: Path, columns: dict[str, list], image_columns: tuple[str, ...]) -> Path:
    """A folder as `push_to_hub` lays one out (`data/train-00000-of-00001.parquet`), its card declaring a licence."""
    import datasets

    features = {name: datasets.Image() if name in image_columns else datasets.Value("string") for name in columns}
    table = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    (folder / "data").mkdir(parents=True)
    table.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# test pairs\n")
    return folder


@pytest.fixture(scope="module")
def magicbrush(tmp_path_factory, photos) -> tuple[Path, dict]:
    """A MagicBrush-layout folder: 2 good pairs (known edits), then one row per kind of bad input."""
    first, second, third, _ = photos
    after_0, truth_0 = known_edit(first, (60, 50), (22, 15), (20, 200, 40))
    after_1, truth_1 = known_edit(second, (120, 80), (18, 24), (230, 30, 200))
    height, width = first.shape[:2]
    brush = cv2.dilate(truth_0.astype(np.uint8) * 255, np.ones((7, 7), np.uint8))
    restyled = np.clip(third.astype(int) * [0.6, 0.9, 1.3] + 25, 0, 255).astype(np.uint8)
    rows = [
        ("Put a green ball on the left.", first, after_0, brush),
        ("make the thing pink", second, after_1, 255 * truth_1.astype(np.uint8)),
        ("Shrink it.", first, cv2.resize(after_0, (width // 2, height // 2)), brush),
        ("Wrong mask.", first, after_0, cv2.resize(brush, (width // 2, height // 2))),
        ("Empty mask.", first, after_0, np.zeros((height, width), np.uint8)),
        ("Make it look like autumn.", third, restyled, np.full(third.shape[:2], 255, np.uint8)),
        ("Corrupt.", first, None, brush),
    ]
    columns = {"source_img": [], "target_img": [], "instruction": [], "mask_img": []}
    for instruction, before, after, mask in rows:
        columns["source_img"].append(png(before))
        columns["target_img"].append(
            png(after) if after is not None else {"bytes": b"\x89PNG\r\n\x1a\n" + bytes(200), "path": None}
        )
        columns["instruction"].append(instruction)
        columns["mask_img"].append(png(mask))
    folder = write_hub_folder(
        tmp_path_factory.mktemp("mb") / "magicbrush", columns, ("source_img", "target_img", "mask_img")
    )
    truths = {"brush_0": brush > 0, "truth_1": truth_1}
    return folder, truths  # fmt: skip


def test_magicbrush_layout_becomes_exact_pairs_in_source_order_with_bad_rows_reported(tmp_path, magicbrush, photos):
    from datasets import load_dataset

    folder, truths = magicbrush
    out = tmp_path / "pairs"
    result = runner.invoke(
        app,
        ["realworld", "--out", str(out), "--pairs", str(folder), "--max-side", str(SIDE), "--workers", "1",
         "--shard-size", "10"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = load_dataset(str(out), split="train")
    # Rows 0-1 and 3-6 pass the header checks (row 2's sizes differ, row 3's mask does not fit); of those,
    # only the first two hold a local, visible edit.
    assert len(rows) == 2
    for row, truth, instruction in (
        (rows[0], truths["brush_0"], "Put a green ball on the left."),
        (rows[1], truths["truth_1"], "Make the thing pink."),
    ):
        civilian, spy = np.asarray(row["civilian"]), np.asarray(row["spy"])
        mask = np.asarray(row["diff_mask"]) > 0
        assert np.array_equal(mask, truth), "the given mask is the diff mask"
        assert np.array_equal(civilian[~mask], spy[~mask]), "outside the mask the spy is the civilian, bit for bit"
        assert (np.abs(spy.astype(int) - civilian.astype(int)).max(axis=2)[mask] > 40).mean() > 0.5
        assert row["description"] == instruction
    assert np.array_equal(np.asarray(rows[0]["civilian"]), photos[0])
    assert [edit["op"] for row in rows for edit in row["edits"]] == ["add", "recolor"]
    meta = json.loads(rows[0]["meta"])
    assert meta["source"]["pair_id"] == "train/000000" and meta["mask"]["origin"] == "given"
    reasons = {}
    for line in (out / "report.jsonl").read_text().splitlines():
        event = json.loads(line)
        assert event["event"] in ("input_skipped", "skipped"), event
        reasons[event.get("source") or event["index"]] = event["reason"]
    assert "must be the same size" in reasons["split=train row=2"]
    assert "mask (mask_img) is 96x" in reasons["split=train row=3"]
    assert "header is unreadable" in reasons["split=train row=6 target_img"]
    assert "all zero" in reasons[2] and "global edit" in reasons[3]
    card = (out / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "as the source dataset declares" in card


def test_computed_mask_follows_the_true_edit_within_a_few_pixels(photos):
    before = photos[0]
    after, truth = known_edit(before, (70, 60), (25, 16), (240, 220, 30))
    change = computed_mask(before, after)
    # 6 px: the mask is grown by 2 px for soft edges, and smoothing and JPEG ringing spread the edge by ~4 more.
    near = cv2.dilate(truth.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    core = cv2.erode(truth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert not (change.mask & ~near).any(), "nothing more than 6 px outside the true edit is marked"
    assert change.mask[core].all(), "the true edit's inside is marked"
    assert change.thresholds[0] > change.noise


def test_hq_edit_layout_without_mask_is_composited_from_the_computed_change(tmp_path, photos):
    before = photos[1]
    after, truth = known_edit(before, (100, 70), (20, 14), (30, 60, 230))
    aligned_but_global = np.clip(before.astype(int) + 60, 0, 255).astype(np.uint8)
    columns = {
        "input_image": [png(before), png(before), png(photos[3])],
        "output_image": [png(after), png(aligned_but_global), png(np.roll(photos[3], (0, 9), axis=(0, 1)))],
        "edit": ["remove the pot", "brighten everything", "move the camera"],
    }
    folder = write_hub_folder(tmp_path / "hq", columns, ("input_image", "output_image"))
    config = RealworldConfig(
        pairs=str(folder), before_column="input_image", after_column="output_image", instruction_column="edit",
        max_side=SIDE,
    )  # fmt: skip
    generator = make_generator(config)
    assert len(generator.source) == 3
    pair = generator(0, item_seed(0, 0))
    near = cv2.dilate(truth.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    assert pair.diff_mask[truth].all() and not (pair.diff_mask & ~near).any()
    assert np.array_equal(pair.civilian[~pair.diff_mask], pair.spy[~pair.diff_mask])
    assert pair.description == "Remove the pot." and pair.edits[0].op == "remove"
    assert (pair.edits[0].before, pair.edits[0].after) == ("present", "absent")
    with pytest.raises(UnusableItem, match="global edit"):
        generator(1, item_seed(0, 1))
    with pytest.raises(UnusableItem, match=r"misaligned with before by \(9"):
        generator(2, item_seed(0, 2))
    assert generator.licence.id == "cc-by-4.0"


def test_missing_columns_and_a_source_without_usable_pairs_fail_at_once(tmp_path, photos):
    before = photos[0]
    columns = {"source_img": [png(before)], "target_img": [png(cv2.resize(before, (100, 80)))], "instruction": ["x"]}
    folder = write_hub_folder(tmp_path / "bad", columns, ("source_img", "target_img"))
    with pytest.raises(ConfigError, match=r"no column 'mask_img'; its columns are \['source_img', 'target_img'"):
        make_generator(RealworldConfig(pairs=str(folder), mask_column="mask_img"))
    with pytest.raises(ConfigError, match="no usable before/after pair.*must be the same size"):
        make_generator(RealworldConfig(pairs=str(folder)))
    result = runner.invoke(
        app, ["realworld", "--out", str(tmp_path / "o"), "--pairs", str(folder), "--edits", "recolor"]
    )
    assert result.exit_code != 0 and "--edits" in result.output
    with pytest.raises(ConfigError, match="drop source"):
        make_generator(RealworldConfig(pairs=str(folder), source=str(folder)))


@pytest.mark.parametrize(
    ("instruction", "sentence", "kind"),
    [
        ("  remove   the cup ", "Remove the cup.", "remove"),
        ("Please add a red hat!", "Please add a red hat!", "add"),
        ("change the car's colour to blue", "Change the car's colour to blue.", "recolor"),
        ("replace the dog with a cat", "Replace the dog with a cat.", "replace"),
        ("let it snow", "Let it snow.", "instructed"),
    ],
)
def test_instructions_become_sentences_and_kinds(instruction, sentence, kind):
    assert instruction_sentence(instruction) == sentence
    assert instruction_kind(instruction) == kind
