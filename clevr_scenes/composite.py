"""The spy image, its diff mask and boxes, from the civilian image and a spy frame developed from the same samples.

The spy frame is the civilian's raw passes with the spy's region renders spliced in, denoised whole
(`domain.py`). Cycles draws every pixel's samples from the same sequence in both scenes, so a pixel whose light
paths never meet a changed object has the same raw values in both: where the two developed frames differ, a
changed object is seen, shades, or is mirrored, or the denoiser carries such a change a few pixels along. There
is no render noise in that difference.

The mask is built from the scene, then trimmed by that difference: each changed object's silhouettes before and
after (Object Index pass), plus the pixels of its footprint (`region.footprints`: contact, shadows from every
lamp corner, reflections) where the frames differ by at least VISIBLE_CHANGE levels. Islands that are both small
and faint (the denoiser's answer to a few indirect-light samples that met a changed object) are dropped. The spy
is the civilian image with the spy frame blended in only there: fully on the mask's core, fading out over
FEATHER pixels around it, and not at all outside; outside the mask the spy is the civilian bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from clevr_scenes.region import Owner
from datagen.masks import channel_max, dilate

VISIBLE_CHANGE = 3
"""Levels (of 255, largest channel) from which a footprint pixel's change joins the mask; smaller changes are
left out of the spy (they are the civilian's pixels there)."""
CLEAR_CHANGE = 8
"""Levels from which a change is clearly visible: an island holding one is kept, whatever its size."""
ISLAND_PIXELS = 16
"""A mask island without a clear change is dropped below this many pixels, and a hole that small is filled (the
denoiser's specks are a few pixels across whatever the frame size)."""
FEATHER = 2
"""Pixels over which the spy frame fades into the civilian image around the mask's core."""


@dataclass(frozen=True)
class SpyImage:
    """The spy image and its ground truth.

    Attributes:
        rgb: `[H, W, 3]` uint8, equal to the civilian image wherever `mask` is False.
        mask: `[H, W]` bool, the diff mask (the core grown by FEATHER).
        boxes: owner (`region.Owner`, in the footprints' order) -> `[x0, y0, x1, y1]` (exclusive ends) around
            its mask pixels: a changed object's box holds its silhouettes before and after and its shadows; an
            unchanged object mirroring changed ones (or lit by them) gets a box of its own. An owner none of whose
            pixels changed has no box.
    """

    rgb: np.ndarray
    mask: np.ndarray
    boxes: dict[Owner, list[int]]


def compose(
    civilian: np.ndarray,
    spy_frame: np.ndarray,
    indices: tuple[np.ndarray, np.ndarray],
    footprints: Mapping[Owner, np.ndarray],
) -> SpyImage:
    """The spy image of a pair (see the module docstring).

    Args:
        civilian: `[H, W, 3]` uint8, the developed civilian render.
        spy_frame: `[H, W, 3]` uint8, the developed spy frame from the same samples.
        indices: `[H, W]` int object ids seen at each pixel, civilian and spy.
        footprints: `[H, W]` bool per owner, from `region.change_area`.

    Raises:
        RuntimeError: a mask pixel lies in no changed object's footprint (the footprints missed a silhouette).
    """
    delta = channel_max(cv2.absdiff(civilian, spy_frame))
    silhouettes = {owner: _silhouette(indices, owner.object_id) for owner in footprints if not owner.mirror}
    owned = {owner: area | silhouettes[owner] if not owner.mirror else area for owner, area in footprints.items()}
    reach = np.logical_or.reduce(list(owned.values()))
    seen = np.logical_or.reduce(list(silhouettes.values()))
    core = _tidied(seen | (reach & (delta >= VISIBLE_CHANGE)), delta) & reach
    weight = _feathered(core)
    mask = weight > 0
    blend = civilian + weight[..., None] * (spy_frame.astype(np.float32) - civilian)
    return SpyImage(rgb=np.rint(blend).astype(np.uint8), mask=mask, boxes=_boxes(mask, owned))


def _silhouette(indices: tuple[np.ndarray, np.ndarray], object_id: int) -> np.ndarray:
    before, after = indices
    return (before == object_id) | (after == object_id)


def _tidied(mask: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """`mask` without its faint specks and pinholes: one-pixel gaps closed (a shadow's edge crosses VISIBLE_CHANGE
    on and off), 8-connected islands smaller than ISLAND_PIXELS that hold no CLEAR_CHANGE dropped, and holes of
    that size filled."""
    closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    strongest = np.zeros(count, np.int32)
    np.maximum.at(strongest, labels.ravel(), delta.ravel().astype(np.int32))
    keep = (stats[:, cv2.CC_STAT_AREA] >= ISLAND_PIXELS) | (strongest >= CLEAR_CHANGE)
    keep[0] = False
    kept = keep[labels]
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~kept).astype(np.uint8), connectivity=4)
    pinholes = stats[:, cv2.CC_STAT_AREA] < ISLAND_PIXELS
    pinholes[0] = False
    return kept | pinholes[labels]


def _feathered(core: np.ndarray) -> np.ndarray:
    """`[H, W]` float32 blend weight: 1 on `core`, falling linearly to 0 at FEATHER + 1 pixels from it."""
    if not core.any():
        return np.zeros(core.shape, np.float32)
    distance = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(1.0 - distance / (FEATHER + 1), 0.0, 1.0).astype(np.float32)


def _boxes(mask: np.ndarray, owned: Mapping[Owner, np.ndarray]) -> dict[Owner, list[int]]:
    """Per owner (in order), the box around the mask pixels within FEATHER of what it owns.

    Raises:
        RuntimeError: some mask pixel belongs to no object.
    """
    boxes: dict[Owner, list[int]] = {}
    covered = np.zeros(mask.shape, bool)
    for owner, area in owned.items():
        mine = mask & dilate(area, FEATHER)
        covered |= mine
        ys, xs = np.nonzero(mine)
        if xs.size:
            boxes[owner] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    if (mask & ~covered).any():
        raise RuntimeError(f"{int((mask & ~covered).sum())} diff-mask pixels lie in no changed object's footprint")
    return boxes
