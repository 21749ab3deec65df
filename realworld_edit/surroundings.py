"""Where an object can be cut out, and where it can be put down, without a viewer noticing: its surroundings.

An object lifted from busy surroundings (a strand of hair, a part of a machine) leaves a hole no fill can
hide and, pasted elsewhere, drags a fringe of its old background along. So the geometric edits (remove,
move, duplicate, mirror, resize) take only regions whose ring of surroundings is plain, and a pasted
object goes only where the ring it lands in has the colour of the ring it left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realworld_edit.blending import Box, place
from realworld_edit.wording import to_lab

MAX_SPREAD = 9.0
"""Largest spread (mean per-channel standard deviation, CIELAB) of a ring that counts as plain."""
MAX_MISMATCH = 10.0
"""Largest CIELAB distance between the mean colours of the source ring and the destination ring of a paste."""
SAMPLES = 400
"""Ring pixels sampled (evenly) for its colour: plenty for a mean and a spread, cheap for 40 candidate spots."""


@dataclass(frozen=True)
class Ring:
    """The pixels around a region's mask, as offsets from its box's corner (some may be negative)."""

    dy: np.ndarray
    dx: np.ndarray

    @classmethod
    def around(cls, box: Box, mask: np.ndarray) -> Ring:
        """The ring of width `max(3, sqrt(area) / 7)` around `mask` (of `box`), evenly thinned to `SAMPLES` pixels."""
        width = max(3, round(np.sqrt(mask.sum()) / 7))
        outer = (box[0] - width, box[1] - width, box[2] + width, box[3] + width)
        inside = place(mask, box, outer)
        ring = cv2.dilate(inside.astype(np.uint8), np.ones((2 * width + 1,) * 2, np.uint8)).astype(bool) & ~inside
        ys, xs = np.nonzero(ring)
        step = max(1, len(ys) // SAMPLES)
        return cls(ys[::step] - width, xs[::step] - width)

    def colour(self, image: np.ndarray, corner: tuple[int, int]) -> tuple[np.ndarray, float]:
        """Mean CIELAB colour `[3]` and spread of the ring placed with its box's corner at `corner` (x, y)."""
        height, width = image.shape[:2]
        ys, xs = self.dy + corner[1], self.dx + corner[0]
        inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
        lab = to_lab(image[ys[inside], xs[inside]][None])[0]
        return lab.mean(axis=0), float(lab.std(axis=0).mean())


def plain_problem(image: np.ndarray, box: Box, mask: np.ndarray) -> str:
    """Why the region's surroundings are too busy to cut it out cleanly, or ""."""
    _, spread = Ring.around(box, mask).colour(image, (box[0], box[1]))
    if spread > MAX_SPREAD:
        return f"the surroundings of the region at {box} are too busy (spread {spread:.1f}, at most {MAX_SPREAD:g})"
    return ""
