"""Edits that hold up to a look: the seam check, fills with grain, plain surroundings, outlines, annotation fallback."""

from __future__ import annotations

import json

import cv2
import numpy as np

from datagen.errors import QualityRejected
from datagen.seeding import item_seed
from realworld_edit.blending import Patch, blend, crop, feather, merged
from realworld_edit.domain import RealworldConfig, make_generator
from realworld_edit.edits import EDIT_KINDS, EditContext
from realworld_edit.inpaint import fill_hole
from realworld_edit.regions import propose_regions
from realworld_edit.seams import seam_problem
from realworld_edit.sources import open_source
from realworld_edit.surroundings import plain_problem


def textured(size: int = 256, seed: int = 0) -> np.ndarray:
    """`[size, size, 3]` uint8: a mid-grey, gently shaded surface with fine grain of about ±14 levels (like fabric)."""
    rng = np.random.default_rng(seed)
    shade = np.linspace(90, 150, size, dtype=np.float32)[None, :, None]
    grain = cv2.GaussianBlur(rng.normal(0, 20, (size, size, 1)).astype(np.float32), (0, 0), 0.8)[..., None]
    return np.clip(shade + grain + np.zeros((size, size, 3), np.float32), 0, 255).astype(np.uint8)


def disc(size: int, centre: tuple[int, int], radius: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, centre, radius, 1, thickness=-1)
    return mask.astype(bool)


def texture_energy(pixels: np.ndarray, where: np.ndarray) -> float:
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=3))[where].mean())


def test_a_fill_keeps_the_grain_of_its_surroundings_and_passes_the_seam_check():
    image = textured()
    box = (64, 64, 192, 192)
    hole = disc(128, (64, 64), 36)
    filled = fill_hole(image, box, hole)
    around = disc(128, (64, 64), 52) & ~disc(128, (64, 64), 40)
    assert np.array_equal(filled[~hole], crop(image, box)[~hole])
    ratio = texture_energy(filled, hole) / texture_energy(crop(image, box), around)
    assert 0.6 < ratio < 1.6, ratio
    alpha = feather(hole, 3)
    assert seam_problem(image, Patch(box, blend(crop(image, box), filled, alpha), alpha > 0), feather=3) == ""
    # Inpainting alone leaves a smooth blob in the grain: the seam check calls that a texture break.
    smooth = cv2.inpaint(crop(image, box), hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    assert texture_energy(smooth, hole) < 0.5 * texture_energy(crop(image, box), around)
    problem = seam_problem(image, Patch(box, blend(crop(image, box), smooth, alpha), alpha > 0), feather=3)
    assert "texture breaks" in problem


def test_a_hard_edged_paste_on_a_smooth_surface_is_a_seam():
    image = np.zeros((256, 256, 3), np.uint8) + np.linspace(60, 120, 256, dtype=np.uint8)[None, :, None]
    box = (100, 100, 160, 160)
    square = np.zeros((60, 60), bool)
    square[10:50, 10:50] = True
    pasted = crop(image, box).copy()
    pasted[square] = (200, 180, 40)
    assert "seam" in seam_problem(image, Patch(box, pasted, square), feather=3)


def test_real_recolour_and_brightness_edits_mostly_pass_the_seam_check():
    photo = open_source(None, max_side=320).load(3).pixels
    verdicts = []
    for kind in ("recolor", "brightness"):
        for region in propose_regions(photo):
            context = EditContext(photo, np.zeros(photo.shape[:2], bool), np.random.default_rng(0), feather=3)
            try:
                outcome = EDIT_KINDS[kind].make(context, region)
            except QualityRejected:
                continue
            verdicts.append(seam_problem(photo, merged(photo, outcome.patches), feather=3))
    assert len(verdicts) >= 6 and sum(verdict == "" for verdict in verdicts) >= 0.8 * len(verdicts), verdicts


def test_surroundings_are_plain_or_busy():
    flat = np.full((200, 200, 3), 120, np.uint8)
    busy = np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    box = (80, 80, 120, 120)
    mask = disc(40, (20, 20), 15)
    assert plain_problem(flat, box, mask) == ""
    assert "too busy" in plain_problem(busy, box, mask)


def test_proposals_follow_an_objects_outline():
    size = 512
    image = textured(size, seed=3)
    truth = np.zeros((size, size), bool)
    cv2.ellipse(truth.view(np.uint8), (300, 220), (60, 40), 20, 0, 360, 1, thickness=-1)
    image[truth] = (200, 60, 40)
    regions = propose_regions(image)
    best = max(regions, key=lambda region: int(crop(truth, region.box)[region.mask].sum()))
    mask = np.zeros((size, size), bool)
    crop(mask, best.box)[best.mask] = True
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9, iou
    boundary_error = cv2.distanceTransform((~truth).astype(np.uint8), cv2.DIST_L2, 3)[mask].max()
    assert boundary_error <= 4, boundary_error


def test_a_photo_with_fewer_annotated_objects_than_changes_takes_proposals_for_the_rest(tmp_path):
    pixels = open_source(None, max_side=320).load(3).pixels
    height, width = pixels.shape[:2]
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "coffee.png"), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    spoon = [0.53, 0.55, 0.68, 0.55, 0.68, 0.82, 0.53, 0.82]
    polygon = [value * (width if i % 2 == 0 else height) for i, value in enumerate(spoon)]
    document = {
        "images": [{"id": 1, "file_name": "coffee.png", "width": width, "height": height}],
        "categories": [{"id": 7, "name": "spoon"}],
        "annotations": [{"id": 70, "image_id": 1, "category_id": 7, "iscrowd": 0, "segmentation": [polygon]}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(document))
    config = RealworldConfig(source=str(folder), annotations=str(tmp_path / "instances.json"), changes=2, max_side=320)
    generator = make_generator(config)
    regions = generator.photo(0).regions
    assert regions[0].label == "spoon" and len(regions) > 1
    assert all(region.origin == "proposal" for region in regions[1:])


def test_unlabelled_objects_are_described_by_size_colour_and_position():
    generator = make_generator(RealworldConfig(max_side=320, changes=1, edit_kinds=("recolor", "remove")))
    descriptions = []
    for index in range(8):
        try:
            descriptions.append(generator(index, item_seed(4, index)).description)
        except QualityRejected:
            continue
    assert len(descriptions) >= 5
    assert all(" object " in text and " region " not in text for text in descriptions), descriptions
