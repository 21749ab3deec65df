"""Real-photo pairs: region proposals, every edit kind on a real photo, the generator, and `vzero realworld`."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from datagen.errors import ConfigError, QualityRejected
from datagen.masks import channel_max
from datagen.record import png_bytes
from datagen.seeding import item_seed
from realworld_edit.blending import Patch, apply_patch, crop, merged, poisson_paste
from realworld_edit.domain import QUALITY, RealworldConfig, make_generator, why_refused
from realworld_edit.edits import EDIT_KINDS, EditContext
from realworld_edit.regions import BORDER, MAX_AREA, MIN_AREA, annotated_regions, propose_regions
from realworld_edit.sources import ObjectMask, open_source
from realworld_edit.wording import POSITIONS, colour_name

POSITION_WORDS = {word for row in POSITIONS for word in row}
runner = CliRunner()


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """The built-in photos at 320 px, by name."""
    source = open_source(None, max_side=320)
    return {source.image_ids[i].split("/")[-1]: source.load(i).pixels for i in range(len(source))}


@pytest.fixture(scope="module")
def coffee_regions(photos) -> list:
    return propose_regions(photos["coffee"])


def test_proposals_stay_inside_the_image_within_area_bounds_and_repeat_exactly(photos):
    for name in ("astronaut", "chelsea", "coffee", "coins"):
        pixels = photos[name]
        height, width = pixels.shape[:2]
        regions = propose_regions(pixels)
        assert regions, name
        for region in regions:
            x0, y0, x1, y1 = region.box
            # Boxes are scaled up from the working copy, so the border margin holds up to a pixel of rounding.
            assert BORDER * width - 2 <= x0 < x1 <= width - BORDER * width + 2, (name, region.box)
            assert BORDER * height - 2 <= y0 < y1 <= height - BORDER * height + 2, (name, region.box)
            assert region.mask.shape == (y1 - y0, x1 - x0) and region.mask.any()
            assert 0.8 * MIN_AREA <= region.area / (height * width) <= 1.1 * MAX_AREA, (name, region.area)
        assert [r.score for r in regions] == sorted((r.score for r in regions), reverse=True)
        again = propose_regions(pixels.copy())
        assert [r.box for r in again] == [r.box for r in regions]
        assert all(np.array_equal(a.mask, b.mask) for a, b in zip(again, regions))


def test_a_plain_photo_has_no_region_to_edit():
    gradient = np.repeat(np.linspace(40, 200, 256, dtype=np.uint8)[None, :, None], 192, axis=0).repeat(3, axis=2)
    assert propose_regions(gradient) == []


def test_annotated_objects_within_the_area_bounds_become_regions():
    height, width = 200, 300
    masks = {"dog": (50, 80, 100, 140), "crumb": (10, 10, 14, 14), "sofa": (0, 0, 300, 150)}
    objects = []
    for number, (category, (x0, y0, x1, y1)) in enumerate(masks.items()):
        mask = np.zeros((height, width), bool)
        mask[y0:y1, x0:x1] = True
        objects.append(ObjectMask(mask=mask, category=category, annotation_id=number))
    regions = annotated_regions(tuple(objects), height, width)
    assert [(r.label, r.box, r.origin) for r in regions] == [("dog", (50, 80, 100, 140), "annotation")]


def test_annotated_objects_are_edited_and_named_by_their_category(tmp_path, photos):
    folder = tmp_path / "photos"
    folder.mkdir()
    pixels = photos["coffee"]
    height, width = pixels.shape[:2]
    cv2.imwrite(str(folder / "coffee.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    spoon = [0.53, 0.55, 0.68, 0.55, 0.68, 0.82, 0.53, 0.82]  # the spoon's surroundings, as fractions
    crumb = [0.1, 0.1, 0.11, 0.1, 0.11, 0.11]
    document = {
        "images": [{"id": 1, "file_name": "coffee.png", "width": width, "height": height}],
        "categories": [{"id": 7, "name": "spoon"}, {"id": 8, "name": "crumb"}],
        "annotations": [
            {"id": 70 + n, "image_id": 1, "category_id": 7 + n, "iscrowd": 0,
             "segmentation": [[value * (width if i % 2 == 0 else height) for i, value in enumerate(points)]]}
            for n, points in enumerate((spoon, crumb))
        ],
    }  # fmt: skip
    (tmp_path / "instances.json").write_text(json.dumps(document))
    generator = make_generator(
        RealworldConfig(source=str(folder), annotations=str(tmp_path / "instances.json"), changes=1, max_side=320)
    )
    pair = generator(0, item_seed(1, 0))
    QUALITY.check(pair)
    assert [(region["origin"], region["label"]) for region in pair.meta["regions"]] == [("annotation", "spoon")]
    assert " spoon " in pair.description and pair.edits[0].target.startswith("spoon [")


def test_poisson_paste_changes_only_the_mask_and_puts_the_source_exactly_there():
    rng = np.random.default_rng(0)
    background = np.full((40, 50, 3), 120, np.uint8)
    source = rng.integers(90, 150, (40, 50, 3), dtype=np.uint8)
    mask = np.zeros((40, 50), bool)
    mask[9:30, 12:41] = True
    pasted = poisson_paste(background, source, mask).astype(float)
    assert np.array_equal(pasted[~mask], background[~mask].astype(float))
    inner = (slice(12, 27), slice(15, 38))

    def gradient_error(dy: int, dx: int) -> float:
        shifted = np.roll(source.astype(float), (dy, dx), axis=(0, 1))[inner]
        return float(np.abs(np.diff(pasted[inner], axis=1) - np.diff(shifted, axis=1)).mean())

    # The source's gradients are reproduced at the mask's place, not a pixel off.
    assert gradient_error(0, 0) < 0.5 * min(gradient_error(dy, dx) for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)))


PHOTO_ORDER = ("coffee", "coins", "astronaut", "chelsea")


@pytest.fixture(scope="module")
def photo_regions(photos, coffee_regions) -> dict[str, list]:
    return {name: coffee_regions if name == "coffee" else propose_regions(photos[name]) for name in PHOTO_ORDER}


def _made(kind: str, pixels: np.ndarray, regions: list):
    """`_first_edit`'s (region, outcome), or None when `kind` can be made on no region of this photo."""
    try:
        return _first_edit(kind, pixels, regions)
    except AssertionError:
        return None


def _first_edit(kind: str, pixels: np.ndarray, regions: list, seed: int = 0):
    """The first region (best first) on which `kind` can be made, with its outcome."""
    occupied = np.zeros(pixels.shape[:2], bool)
    for region in regions:
        context = EditContext(pixels, occupied, np.random.default_rng(seed), feather=3)
        try:
            return region, EDIT_KINDS[kind].make(context, region)
        except QualityRejected:
            continue
    raise AssertionError(f"{kind} could be made on no region")


def _interior(mask: np.ndarray, pixels: int = 4) -> np.ndarray:
    """Pixels deeper than `pixels` inside `mask`, counting the crop's edge as outside."""
    kernel = np.ones((2 * pixels + 1,) * 2, np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


@pytest.mark.parametrize("kind", sorted(EDIT_KINDS))
def test_each_edit_changes_pixels_only_inside_its_footprint_and_clearly_inside(kind, photos, photo_regions):
    # Geometric edits need a region with plain surroundings, which not every photo offers.
    civilian, region, outcome = next(
        (photos[name], *found) for name in PHOTO_ORDER if (found := _made(kind, photos[name], photo_regions[name]))
    )
    spy = civilian.copy()
    for patch in outcome.patches:
        apply_patch(spy, patch)
    change = merged(civilian, outcome.patches)
    footprint = np.zeros(civilian.shape[:2], bool)
    crop(footprint, change.box)[change.footprint] = True
    delta = channel_max(cv2.absdiff(civilian, spy))
    assert not delta[~footprint].any()
    assert (delta[footprint] >= QUALITY.changed_threshold).sum() >= QUALITY.min_changed_pixels
    assert outcome.edit.op == kind and outcome.edit.before != outcome.edit.after
    assert any(word in outcome.clause for word in POSITION_WORDS)
    json.dumps(outcome.params)
    CHECKS[kind](civilian, spy, region, outcome)


def _check_recolor(civilian, spy, region, outcome):
    inside = crop(np.ones(civilian.shape[:2], bool), region.box) & region.mask
    before, after = crop(civilian, region.box)[inside], crop(spy, region.box)[inside]
    assert colour_name(np.median(after, axis=0)) == outcome.edit.after != outcome.edit.before
    # Shading survives: lightness inside the region keeps its pattern.
    gray_before = cv2.cvtColor(before[None], cv2.COLOR_RGB2GRAY).ravel().astype(float)
    gray_after = cv2.cvtColor(after[None], cv2.COLOR_RGB2GRAY).ravel().astype(float)
    assert np.corrcoef(gray_before, gray_after)[0, 1] > 0.7


def _check_remove(civilian, spy, region, outcome):
    delta = channel_max(cv2.absdiff(crop(civilian, region.box), crop(spy, region.box)))
    assert (delta[region.mask] >= QUALITY.changed_threshold).mean() >= 0.25


def _check_pasted_at(spy, pixels, mask, box, outcome):
    if outcome.params.get("blending") == "poisson":
        # A Poisson clone keeps the object's gradients, not its colours: they correlate with the original's.
        interior = _interior(mask)[:, 1:]
        pasted = np.diff(crop(spy, box).astype(float), axis=1)[interior]
        original = np.diff(pixels.astype(float), axis=1)[interior]
        assert np.corrcoef(pasted.ravel(), original.ravel())[0, 1] > 0.8
    else:
        assert np.array_equal(crop(spy, box)[_interior(mask)], pixels[_interior(mask)])


def _check_duplicate(civilian, spy, region, outcome):
    destination = tuple(outcome.params["to"])
    _check_pasted_at(spy, crop(civilian, region.box), region.mask, destination, outcome)
    assert np.array_equal(crop(spy, region.box), crop(civilian, region.box))


def _check_move(civilian, spy, region, outcome):
    _check_pasted_at(spy, crop(civilian, region.box), region.mask, tuple(outcome.params["to"]), outcome)
    _check_remove(civilian, spy, region, outcome)
    assert outcome.edit.before != outcome.edit.after


def _check_mirror(civilian, spy, region, outcome):
    flipped, flipped_mask = crop(civilian, region.box)[:, ::-1], region.mask[:, ::-1]
    assert np.array_equal(crop(spy, region.box)[_interior(flipped_mask)], flipped[_interior(flipped_mask)])


def _check_resize(civilian, spy, region, outcome):
    target = tuple(outcome.params["to"])
    size = (target[2] - target[0], target[3] - target[1])
    assert abs(size[0] / (region.box[2] - region.box[0]) - outcome.params["factor"]) < 0.1
    scaled_mask = cv2.resize(region.mask.astype(np.float32), size) > 0.5
    scaled = cv2.resize(crop(civilian, region.box), size, interpolation=cv2.INTER_AREA)
    interior = _interior(scaled_mask)
    close = channel_max(cv2.absdiff(crop(spy, target), scaled))[interior] <= 40
    assert close.mean() > 0.9


def _check_brightness(civilian, spy, region, outcome):
    before = cv2.cvtColor(crop(civilian, region.box), cv2.COLOR_RGB2GRAY)[region.mask].mean()
    after = cv2.cvtColor(crop(spy, region.box), cv2.COLOR_RGB2GRAY)[region.mask].mean()
    assert abs(after - before) >= 25
    assert ("brighter" in outcome.clause) == (after > before)


def _check_retexture(civilian, spy, region, outcome):
    source = tuple(outcome.params["from"])
    interior = _interior(region.mask)
    assert np.array_equal(crop(spy, region.box)[interior], crop(civilian, source)[interior])


CHECKS = {
    "recolor": _check_recolor,
    "remove": _check_remove,
    "duplicate": _check_duplicate,
    "move": _check_move,
    "mirror": _check_mirror,
    "resize": _check_resize,
    "brightness": _check_brightness,
    "retexture": _check_retexture,
}


def test_edits_too_subtle_or_too_large_are_refused(photos, coffee_regions):
    civilian = photos["coffee"]
    height, width = civilian.shape[:2]
    region, outcome = _first_edit("brightness", civilian, coffee_regions)
    assert why_refused(civilian, outcome, region, feather=3) == ""
    box = outcome.patches[0].box
    faint = np.clip(crop(civilian, box).astype(int) + 5, 0, 255).astype(np.uint8)
    subtle = replace(outcome, patches=(Patch(box, faint, outcome.patches[0].footprint),))
    assert "changed only" in why_refused(civilian, subtle, region, feather=3)
    everything = Patch((0, 0, width, height), 255 - civilian, np.ones((height, width), bool))
    assert "of the image" in why_refused(civilian, replace(outcome, patches=(everything,)), region, feather=3)


def test_pairs_repeat_exactly_in_any_order_and_pass_the_quality_gate():
    config = RealworldConfig(max_side=256)
    forward, backward = make_generator(config), make_generator(config)
    seeds = [item_seed(7, index) for index in range(6)]
    made = {}
    for index in reversed(range(6)):
        try:
            made[index] = backward(index, seeds[index])
        except QualityRejected as error:
            made[index] = str(error)
    for index in range(6):
        try:
            pair = forward(index, seeds[index])
        except QualityRejected as error:
            assert made[index] == str(error)
            continue
        other = made[index]
        assert np.array_equal(pair.spy, other.spy) and np.array_equal(pair.diff_mask, other.diff_mask)
        assert (pair.description, pair.meta, pair.edits) == (other.description, other.meta, other.edits)
        QUALITY.check(pair)
        changed = channel_max(cv2.absdiff(pair.civilian, pair.spy)) > 0
        assert not (changed & ~pair.diff_mask).any()
        assert len(pair.edits) == 2 and len({edit.target for edit in pair.edits}) == 2
        assert pair.description.endswith(".") and pair.description.count(";") == 1
        assert pair.meta["source"]["image_id"].startswith("builtin/") and pair.meta["source"]["licence"]
        assert 0.0 <= pair.difficulty <= 1.0
        assert pair.civilian_png == png_bytes(pair.civilian), "the photo's cached PNG is not its civilian image"
    assert sum(not isinstance(pair, str) for pair in made.values()) >= 4


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (RealworldConfig(edit_kinds=("recolor", "explode")), "explode"),
        (RealworldConfig(edit_kinds=()), "edit_kinds"),
        (RealworldConfig(changes=0), "changes"),
        (RealworldConfig(max_side=10), "max_side"),
        (RealworldConfig(source="/nonexistent/photos"), "/nonexistent/photos"),
        (RealworldConfig(max_images=0), "max_images"),
    ],
)
def test_bad_configs_fail_before_any_work(config, message):
    with pytest.raises(ConfigError, match=message):
        make_generator(config)


def test_realworld_command_writes_a_loadable_dataset_and_reports_bad_files(tmp_path, photos):
    from datasets import load_dataset

    folder = tmp_path / "photos"
    folder.mkdir()
    for name, suffix in (("coffee", ".jpg"), ("chelsea", ".png")):
        cv2.imwrite(str(folder / f"{name}{suffix}"), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
    jpeg = (folder / "coffee.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "notes.jpg").write_text("not a photo")
    out = tmp_path / "pairs"
    command = ["realworld", "--out", str(out), "--num", "6", "--source", str(folder), "--max-side", "192",
               "--workers", "1", "--shard-size", "3", "--edits", "recolor,remove,move", "--edits",
               "brightness"]  # fmt: skip
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output

    rows = load_dataset(str(out), split="train")
    assert len(rows) == 6 and set(rows["domain"]) == {"realworld"}
    for row in rows:
        assert max(row["civilian"].size) <= 192 and row["civilian"].size == row["spy"].size
        assert {edit["op"] for edit in row["edits"]} <= {"recolor", "remove", "move", "brightness"}
        assert json.loads(row["meta"])["source"]["image_id"] in {"coffee.jpg", "chelsea.png"}
    report = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert any(line["event"] == "input_skipped" and line["source"].endswith("notes.jpg") for line in report)
    assert any("truncated.jpg" in line.get("reason", "") and "InputError" in line["reason"] for line in report)
    # A worker process made these; this process, with a cold photo cache, makes the same pixels.
    generator = make_generator(
        RealworldConfig(source=str(folder), max_side=192, edit_kinds=("recolor", "remove", "move", "brightness"))
    )
    for row in (rows[5], rows[0]):
        pair = generator(int(row["id"].rsplit("-", 1)[1]), row["seed"])
        assert np.array_equal(np.asarray(row["spy"]), pair.spy) and row["description"] == pair.description
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"]["config"]["edit_kinds"] == ["recolor", "remove", "move", "brightness"]
    assert "vzero realworld --out" in manifest["command"]

    built_in = runner.invoke(app, ["realworld", "--out", str(tmp_path / "builtin"), "--num", "3", "--max-side", "160",
                                   "--workers", "1", "--changes", "1", "--max-images", "1"])  # fmt: skip
    assert built_in.exit_code == 0, built_in.output
    built_in_rows = load_dataset(str(tmp_path / "builtin"), split="train")
    assert len(built_in_rows) == 3
    assert {json.loads(meta)["source"]["image_id"] for meta in built_in_rows["meta"]} == {"builtin/astronaut"}


def test_realworld_command_rejects_an_unknown_edit_kind(tmp_path):
    result = runner.invoke(app, ["realworld", "--out", str(tmp_path / "x"), "--num", "2", "--edits", "explode"])
    assert result.exit_code == 1 and "explode" in result.output
