"""The edit kinds of real-photo pairs: each turns one region into patches with exact footprints and a record.

An edit function reads the spy made so far (`EditContext.image`) and returns an `EditOutcome` without
changing anything; the caller decides whether the change is visible enough and applies its patches.
Where an edit cannot be made (no free spot to paste into, a recolouring that keeps its colour name) it
raises `QualityRejected` and the caller draws another edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from datagen.errors import QualityRejected
from datagen.record import Edit
from realworld_edit.blending import Box, Patch, apply_patch, blend, crop, feather, grow_box, place, poisson_paste
from realworld_edit.inpaint import fill_hole
from realworld_edit.regions import BORDER, Region
from realworld_edit.surroundings import MAX_MISMATCH, Ring, plain_problem
from realworld_edit.wording import (
    RECOLOR_TARGETS,
    at,
    colour_name,
    palette_lab,
    position_name,
    to_lab,
    typical_colour,
)

POISSON_SHARE = 0.3
"""Share of pastes blended by Poisson cloning instead of a feathered alpha paste."""
SMALL_SHARE, LARGE_SHARE = 0.015, 0.06
"""Shares of the image below which an unlabelled object is called small, above which large."""
HOLE_GROWTH = 0.08
"""A removed object's hole is grown by this share of its box's long side (at least 2 px): edges bleed."""
SPOT_TRIES = 40
"""Random places tried when looking for free room to paste into."""
RESIZE_FACTORS = ((0.55, 0.75), (1.3, 1.6))
"""Ranges of the scale factor of `resize`: shrink or grow."""
LIGHT_SHIFT = (40.0, 70.0)
"""Range of the change in mean brightness (0..255) of `brightness`."""
MIN_TEXTURE_DIFFERENCE = 30.0
"""Mean per-pixel colour difference (max over channels) a borrowed texture must have from the region's own."""


@dataclass(frozen=True)
class EditContext:
    """What an edit may look at.

    Attributes:
        image: `[H, W, 3]` uint8, the spy so far; edits do not write to it.
        occupied: `[H, W]` bool, pixels earlier edits changed, grown by a gap; pastes avoid them.
        rng: the pair's random generator.
        feather: edge softening radius in pixels.
    """

    image: np.ndarray
    occupied: np.ndarray
    rng: np.random.Generator
    feather: int


@dataclass(frozen=True)
class EditOutcome:
    """One edit ready to apply: its patches (in order), its record, its clause and its parameters for `meta`."""

    edit: Edit
    patches: tuple[Patch, ...]
    clause: str
    params: dict[str, Any]
    consulted: tuple[Box, ...] = ()
    """Boxes the edit copied from and its description names (a duplicate's original, a borrowed texture):
    later edits keep off them, so that the description stays true."""


@dataclass(frozen=True)
class EditKind:
    """A registered edit: how to make it and how hard it is to spot (0 obvious .. 1 subtle)."""

    name: str
    make: Callable[[EditContext, Region], EditOutcome]
    subtlety: float


def recolor(context: EditContext, region: Region) -> EditOutcome:
    """Give the region another hue (CIELAB a/b), keeping its lightness pattern so that shading survives."""
    height, width = context.image.shape[:2]
    box = grow_box(region.box, 2 * context.feather, width, height)
    mask = place(region.mask, region.box, box)
    original = crop(context.image, box)
    lab = to_lab(original)
    before = colour_name(typical_colour(original, mask))
    target = str(context.rng.choice([name for name in RECOLOR_TARGETS if name != before]))
    goal = palette_lab(target)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    new_chroma = np.maximum(np.hypot(goal[1], goal[2]) + chroma - chroma[mask].mean(), 0.3 * np.hypot(goal[1], goal[2]))
    hue = np.arctan2(goal[2], goal[1])
    recoloured = np.empty_like(lab)
    # Half-way to the goal's lightness: keeps the shading (differences of L) while letting e.g. a dark
    # region turn a yellow that still reads as yellow.
    recoloured[..., 0] = np.clip(lab[..., 0] + 0.5 * (goal[0] - lab[..., 0][mask].mean()), 0, 100)
    recoloured[..., 1] = new_chroma * np.cos(hue)
    recoloured[..., 2] = new_chroma * np.sin(hue)
    rgb = np.clip(cv2.cvtColor(recoloured, cv2.COLOR_LAB2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    alpha = feather(mask, context.feather)
    pixels = blend(original, rgb, alpha)
    after = colour_name(typical_colour(pixels, mask))
    if after == before:
        raise QualityRejected(f"recolouring towards {target} left the region {before}")
    subject = _subject(context.image, region)
    return EditOutcome(
        Edit("recolor", _target(region), before, after),
        (Patch(box, pixels, alpha > 0),),
        f"{subject} became {after}",
        {"op": "recolor", "box": list(region.box), "aimed_at": target, "before": before, "after": after},
    )


def remove(context: EditContext, region: Region) -> EditOutcome:
    """Fill the region in from its surroundings (`inpaint.fill_hole`: structure plus borrowed grain)."""
    _plain(context, region)
    return EditOutcome(
        Edit("remove", _target(region), "present", "absent"),
        (_filled(context.image, region, context.feather),),
        f"{_subject(context.image, region)} was removed",
        {"op": "remove", "box": list(region.box)},
    )


def duplicate(context: EditContext, region: Region) -> EditOutcome:
    """Paste a copy of the region's object into free room elsewhere."""
    _plain(context, region)
    destination = _free_spot(context, region, _size(region.box), other_cell=False)
    blending = _blending(context)
    patch = _paste(context.image, crop(context.image, region.box), region.mask, destination, context.feather, blending)
    here, there = _where(context.image, region.box), _where(context.image, destination)
    return EditOutcome(
        Edit("duplicate", _target(region), at(here), f"{at(here)} and {at(there)}"),
        (patch,),
        f"a copy of {_subject(context.image, region)} appeared {at(there)}",
        {"op": "duplicate", "box": list(region.box), "to": list(destination), "blending": blending},
        (region.box,),
    )


def move(context: EditContext, region: Region) -> EditOutcome:
    """Inpaint the region away and paste its object into free room in another third of the image."""
    _plain(context, region)
    destination = _free_spot(context, region, _size(region.box), other_cell=True)
    blending = _blending(context)
    hole = _filled(context.image, region, context.feather)
    patch = _paste(context.image, crop(context.image, region.box), region.mask, destination, context.feather, blending)
    here, there = _where(context.image, region.box), _where(context.image, destination)
    return EditOutcome(
        Edit("move", _target(region), at(here), at(there)),
        (hole, patch),
        f"{_subject(context.image, region)} moved to the {there}",
        {"op": "move", "box": list(region.box), "to": list(destination), "blending": blending},
    )


def mirror(context: EditContext, region: Region) -> EditOutcome:
    """Flip the region's object left to right in place (over an inpainted background)."""
    _plain(context, region)
    hole = _filled(context.image, region, context.feather)
    canvas = context.image.copy()
    apply_patch(canvas, hole)
    flipped = crop(context.image, region.box)[:, ::-1]
    patch = _paste(canvas, flipped, region.mask[:, ::-1], region.box, context.feather, "feather")
    return EditOutcome(
        Edit("mirror", _target(region), "as photographed", "mirrored left to right"),
        (hole, patch),
        f"{_subject(context.image, region)} was mirrored left to right",
        {"op": "mirror", "box": list(region.box)},
    )


def resize(context: EditContext, region: Region) -> EditOutcome:
    """Shrink or grow the region's object about its centre (over an inpainted background)."""
    _plain(context, region)
    height, width = context.image.shape[:2]
    low, high = RESIZE_FACTORS[int(context.rng.integers(len(RESIZE_FACTORS)))]
    factor = float(context.rng.uniform(low, high))
    box_width, box_height = _size(region.box)
    new_width, new_height = max(2, round(box_width * factor)), max(2, round(box_height * factor))
    centre_x, centre_y = (region.box[0] + region.box[2]) // 2, (region.box[1] + region.box[3]) // 2
    x0, y0 = centre_x - new_width // 2, centre_y - new_height // 2
    target_box = (x0, y0, x0 + new_width, y0 + new_height)
    margin_x, margin_y = round(BORDER * width), round(BORDER * height)
    if x0 < margin_x or y0 < margin_y or target_box[2] > width - margin_x or target_box[3] > height - margin_y:
        raise QualityRejected(f"resizing by {factor:.2f} would push the region past the image border")
    if crop(context.occupied, grow_box(target_box, context.feather, width, height)).any():
        raise QualityRejected(f"resizing by {factor:.2f} would reach into an earlier edit")
    hole = _filled(context.image, region, context.feather)
    canvas = context.image.copy()
    apply_patch(canvas, hole)
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(crop(context.image, region.box), (new_width, new_height), interpolation=interpolation)
    scaled_mask = cv2.resize(region.mask.astype(np.float32), (new_width, new_height)) > 0.5
    patch = _paste(canvas, scaled, scaled_mask, target_box, context.feather, "feather")
    change = "larger" if factor > 1 else "smaller"
    return EditOutcome(
        Edit("resize", _target(region), "100%", f"{round(100 * factor)}%"),
        (hole, patch),
        f"{_subject(context.image, region)} became {change}",
        {"op": "resize", "box": list(region.box), "to": list(target_box), "factor": round(factor, 4)},
    )


def brightness(context: EditContext, region: Region) -> EditOutcome:
    """Make the region brighter or darker, with a contrast change, leaving its surroundings alone."""
    height, width = context.image.shape[:2]
    box = grow_box(region.box, 2 * context.feather, width, height)
    mask = place(region.mask, region.box, box)
    original = crop(context.image, box)
    gray = cv2.cvtColor(original, cv2.COLOR_RGB2GRAY)
    level = float(gray[mask].mean())
    brighter = level < 100 or (level <= 155 and bool(context.rng.random() < 0.5))
    shift = float(context.rng.uniform(*LIGHT_SHIFT)) * (1 if brighter else -1)
    contrast = float(context.rng.uniform(0.8, 1.25))
    changed = (original.astype(np.float32) - level) * contrast + level + shift
    alpha = feather(mask, context.feather)
    pixels = blend(original, np.clip(changed + 0.5, 0, 255).astype(np.uint8), alpha)
    after = float(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[mask].mean())
    return EditOutcome(
        Edit("brightness", _target(region), f"mean brightness {level:.0f}", f"mean brightness {after:.0f}"),
        (Patch(box, pixels, alpha > 0),),
        f"{_subject(context.image, region)} became {'brighter' if after > level else 'darker'}",
        {"op": "brightness", "box": list(region.box), "shift": round(shift, 2), "contrast": round(contrast, 4)},
    )


def retexture(context: EditContext, region: Region) -> EditOutcome:
    """Fill the region's outline with the content of another place of the photo that looks different."""
    height, width = context.image.shape[:2]
    original = crop(context.image, region.box)
    for _ in range(SPOT_TRIES):
        source = _spot(context.rng, _size(region.box), width, height)
        if _overlap(source, region.box):
            continue
        texture = crop(context.image, source)
        difference = cv2.absdiff(texture, original).max(axis=2)[region.mask].mean()
        if difference >= MIN_TEXTURE_DIFFERENCE:
            break
    else:
        raise QualityRejected(f"no place in the photo looks different enough from the region at {region.box}")
    box = grow_box(region.box, 2 * context.feather, width, height)
    inner = (region.box[0] - box[0], region.box[1] - box[1], region.box[2] - box[0], region.box[3] - box[1])
    filler = crop(context.image, box).copy()
    crop(filler, inner)[:] = texture
    alpha = feather(place(region.mask, region.box, box), context.feather)
    elsewhere = _where(context.image, source)
    return EditOutcome(
        Edit("retexture", _target(region), "its own surface", f"the surface {at(elsewhere)}"),
        (Patch(box, blend(crop(context.image, box), filler, alpha), alpha > 0),),
        f"{_subject(context.image, region)} took on the look of the area {at(elsewhere)}",
        {"op": "retexture", "box": list(region.box), "from": list(source)},
        (source,),
    )


EDIT_KINDS: dict[str, EditKind] = {
    kind.name: kind
    for kind in (
        EditKind("recolor", recolor, 0.2),
        EditKind("remove", remove, 0.4),
        EditKind("duplicate", duplicate, 0.4),
        EditKind("move", move, 0.35),
        EditKind("mirror", mirror, 0.8),
        EditKind("resize", resize, 0.6),
        EditKind("brightness", brightness, 0.5),
        EditKind("retexture", retexture, 0.3),
    )
}
"""Every edit kind by name; `--edits` chooses among these."""
DEFAULT_EDIT_KINDS = tuple(name for name in EDIT_KINDS if name != "retexture")
"""The kinds drawn unless `--edits` says otherwise: a borrowed texture inside an object's outline reads as
pasted whatever the blending, so `retexture` is there only on request."""


def _subject(image: np.ndarray, region: Region) -> str:
    """'the small red object at the upper left' / 'the brown dog at the centre': the category where one is known."""
    colour = colour_name(typical_colour(crop(image, region.box), region.mask))
    if region.label:
        return f"the {colour} {region.label} {at(_where(image, region.box))}"
    share = region.area / (image.shape[0] * image.shape[1])
    size = "small " if share < SMALL_SHARE else "large " if share > LARGE_SHARE else ""
    return f"the {size}{colour} object {at(_where(image, region.box))}"


def _target(region: Region) -> str:
    x0, y0, x1, y1 = region.box
    return f"{region.label or 'region'} [{x0}, {y0}, {x1}, {y1}]"


def _where(image: np.ndarray, box: Box) -> str:
    return position_name(box, image.shape[1], image.shape[0])


def _size(box: Box) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def _overlap(first: Box, second: Box) -> bool:
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]


def _blending(context: EditContext) -> str:
    return "poisson" if context.rng.random() < POISSON_SHARE else "feather"


def _filled(image: np.ndarray, region: Region, radius: int) -> Patch:
    """A patch that fills the region in from its surroundings (grown by a little, since object edges bleed)."""
    height, width = image.shape[:2]
    box = grow_box(region.box, max(3 * radius, max(_size(region.box)) // 4), width, height)
    grow = max(2, round(HOLE_GROWTH * max(_size(region.box))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    hole = cv2.dilate(place(region.mask, region.box, box).astype(np.uint8), kernel).astype(bool)
    alpha = feather(hole, radius, grow=radius)
    footprint = alpha > 0
    return Patch(box, blend(crop(image, box), fill_hole(image, box, footprint), alpha), footprint)


def _paste(
    canvas: np.ndarray, pixels: np.ndarray, mask: np.ndarray, destination: Box, radius: int, blending: str
) -> Patch:
    """A patch putting the object `pixels`/`mask` (size of `destination`) at `destination` on `canvas`."""
    height, width = canvas.shape[:2]
    box = grow_box(destination, radius + 2, width, height)
    inner = (destination[0] - box[0], destination[1] - box[1], destination[2] - box[0], destination[3] - box[1])
    background = crop(canvas, box)
    source = background.copy()
    crop(source, inner)[:] = pixels
    placed = place(mask, destination, box)
    if blending == "poisson":
        return Patch(box, poisson_paste(background, source, placed), placed)
    alpha = feather(placed, radius // 2, grow=-(radius // 2))
    return Patch(box, blend(background, source, alpha), alpha > 0)


def _spot(rng: np.random.Generator, size: tuple[int, int], width: int, height: int) -> Box:
    """A random box of `size` inside the image's border margin (may be anywhere else)."""
    margin_x, margin_y = round(BORDER * width), round(BORDER * height)
    if size[0] > width - 2 * margin_x - 1 or size[1] > height - 2 * margin_y - 1:
        raise QualityRejected(f"a {size[0]}x{size[1]} box does not fit inside the border of a {width}x{height} image")
    x0 = int(rng.integers(margin_x, width - margin_x - size[0]))
    y0 = int(rng.integers(margin_y, height - margin_y - size[1]))
    return x0, y0, x0 + size[0], y0 + size[1]


def _free_spot(context: EditContext, region: Region, size: tuple[int, int], *, other_cell: bool) -> Box:
    """The box of `size` whose surroundings best match the region's, clear of it, earlier edits and the border.

    Of `SPOT_TRIES` random boxes (in another 3×3 cell when `other_cell`), the one where the ring around the
    pasted object has the colour of the ring it left; none is taken when even that one differs by more than
    `surroundings.MAX_MISMATCH`, since the object would carry a fringe of its old background.
    """
    height, width = context.image.shape[:2]
    gap = 3 * context.feather + 2
    keep_out = grow_box(region.box, max(gap, max(_size(region.box)) // 4 + context.feather), width, height)
    here = _where(context.image, region.box)
    ring = Ring.around(region.box, region.mask)
    wanted, _ = ring.colour(context.image, (region.box[0], region.box[1]))
    best, best_mismatch = None, np.inf
    for _ in range(SPOT_TRIES):
        spot = _spot(context.rng, size, width, height)
        if _overlap(spot, keep_out) or (other_cell and _where(context.image, spot) == here):
            continue
        if crop(context.occupied, grow_box(spot, gap, width, height)).any():
            continue
        distance = float(np.linalg.norm(ring.colour(context.image, (spot[0], spot[1]))[0] - wanted))
        if distance < best_mismatch:
            best, best_mismatch = spot, distance
    if best is None or best_mismatch > MAX_MISMATCH:
        raise QualityRejected(
            f"no free room with surroundings like those of the {size[0]}x{size[1]} object at {region.box}"
        )
    return best


def _plain(context: EditContext, region: Region) -> None:
    """Refuse a geometric edit of a region whose surroundings are too busy to cut it out cleanly."""
    problem = plain_problem(context.image, region.box, region.mask)
    if problem:
        raise QualityRejected(problem)
