"""Feathering, pasting and compositing of local patches, so that an edit touches only the pixels it claims.

Edits work on crops (`Patch`): a box, the new pixels of that box and a footprint saying which of them
the edit may change. Applying a patch copies only footprint pixels, so everything outside the union of
footprints stays the civilian's own, bit for bit, however far a blur or a Poisson solve spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]
"""`(x0, y0, x1, y1)` in pixels, exclusive ends."""


@dataclass(frozen=True)
class Patch:
    """New pixels for one box of the image.

    Attributes:
        box: where the patch goes.
        pixels: `[h, w, 3]` uint8, the box's new content.
        footprint: `[h, w]` bool, the pixels of the box the edit may change; the rest are not written.
    """

    box: Box
    pixels: np.ndarray
    footprint: np.ndarray


def grow_box(box: Box, margin: int, width: int, height: int) -> Box:
    """`box` grown by `margin` pixels on every side and clipped to the image."""
    x0, y0, x1, y1 = box
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def crop(pixels: np.ndarray, box: Box) -> np.ndarray:
    """The view of `pixels` inside `box`."""
    x0, y0, x1, y1 = box
    return pixels[y0:y1, x0:x1]


def place(mask: np.ndarray, inner: Box, outer: Box) -> np.ndarray:
    """`mask` of box `inner` drawn into an empty bool mask of the enclosing box `outer`."""
    canvas = np.zeros((outer[3] - outer[1], outer[2] - outer[0]), bool)
    canvas[inner[1] - outer[1] : inner[3] - outer[1], inner[0] - outer[0] : inner[2] - outer[0]] = mask
    return canvas


def feather(mask: np.ndarray, radius: int, *, grow: int = 0) -> np.ndarray:
    """`[h, w]` float32 alpha in 0..1: `mask` grown by `grow` pixels (shrunk if negative), edges blurred over `radius`.

    Filling a hole grows it first so the whole hole is replaced at full strength; pasting an object
    shrinks it first so that no background from where the object was cut shows as a halo; recolouring
    and relighting blur the outline itself.
    """
    base = mask.astype(np.uint8)
    if grow:
        kernel = np.ones((2 * abs(grow) + 1,) * 2, np.uint8)
        base = cv2.dilate(base, kernel) if grow > 0 else cv2.erode(base, kernel)
    if radius <= 0:
        return base.astype(np.float32)
    return cv2.GaussianBlur(base.astype(np.float32), (2 * radius + 1,) * 2, radius / 2.0)


def blend(under: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`under` and `over` (`[h, w, 3]` uint8) mixed by `alpha` (`[h, w]` float32), rounded to uint8."""
    weight = alpha[..., None]
    mixed = under.astype(np.float32) * (1.0 - weight) + over.astype(np.float32) * weight
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def apply_patch(image: np.ndarray, patch: Patch) -> None:
    """Write the footprint pixels of `patch` into `image` in place."""
    np.copyto(crop(image, patch.box), patch.pixels, where=patch.footprint[..., None])


def merged(image: np.ndarray, patches: Sequence[Patch]) -> Patch:
    """One patch doing `patches` in order (e.g. fill a hole, then paste), over the box enclosing them all."""
    box = (
        min(patch.box[0] for patch in patches),
        min(patch.box[1] for patch in patches),
        max(patch.box[2] for patch in patches),
        max(patch.box[3] for patch in patches),
    )
    pixels = crop(image, box).copy()
    footprint = np.zeros(pixels.shape[:2], bool)
    for patch in patches:
        inner = (patch.box[0] - box[0], patch.box[1] - box[1], patch.box[2] - box[0], patch.box[3] - box[1])
        np.copyto(crop(pixels, inner), patch.pixels, where=patch.footprint[..., None])
        crop(footprint, inner)[patch.footprint] = True
    return Patch(box, pixels, footprint)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """`mask` with every enclosed hole filled (outer contours drawn solid)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool) | mask.astype(bool)


def poisson_paste(background: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`source` cloned into `background` (both `[h, w, 3]` uint8) where `mask` `[h, w]` is set, gradients kept.

    `cv2.seamlessClone` solves a Poisson equation over the mask, which adapts the pasted object's colour
    to its new surroundings; it changes only pixels inside the mask. The mask must not touch the crop's
    border. The clone is placed by the centre of the mask's bounding box, which with exclusive ends and
    floor division lands the source exactly where it was (checked by the tests).
    """
    ys, xs = np.nonzero(mask)
    center = ((int(xs.min()) + int(xs.max()) + 1) // 2, (int(ys.min()) + int(ys.max()) + 1) // 2)
    return cv2.seamlessClone(source, background, mask.astype(np.uint8) * 255, center, cv2.NORMAL_CLONE)
