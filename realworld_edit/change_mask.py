"""Where an edited image differs from its original: the dataset's own mask, or a noise-aware perceptual difference.

Editing models re-encode the whole picture, so an after image differs from its before image everywhere by
a few levels, and a plain pixel difference marks everything. Here the difference is measured in CIELAB on
lightly smoothed copies (ΔE, so that it follows what a person sees), the noise level is read off the
image itself (most of it is unchanged, so the median and spread of ΔE are the re-encoding's), and
pixels count as changed by hysteresis between two thresholds set well above that noise; morphology then
joins the pieces of one edit and drops specks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realworld_edit.blending import fill_holes
from realworld_edit.wording import to_lab

HIGH_FLOOR, LOW_FLOOR = 12.0, 6.0
"""ΔE below which no pixel counts as changed (strongly / weakly), however clean the re-encoding is."""
HIGH_SIGMAS, LOW_SIGMAS = 8.0, 4.0
"""Thresholds as the noise median plus this many robust standard deviations of ΔE."""
MAX_NOISE, MAX_SPREAD = 4.0, 2.0
"""Largest median and spread of ΔE still read as re-encoding noise: a whole image shifted further (relit,
restyled) is a global change, and must show as one instead of raising the thresholds above it."""
SMOOTHING_SHARE = 0.002
"""Gaussian sigma before differencing, as a share of the long side (at least 1 px): compression noise goes."""
CLOSING_SHARE = 0.012
"""Closing radius joining the pieces of one edit, as a share of the long side."""
MIN_PIECE_SHARE = 0.0004
"""Pieces of the mask smaller than this share of the image are noise, not edits."""
GROW = 2
"""Pixels the computed mask is grown by, so that an edit's soft edge lies inside it."""
DIFFERENCE_SIDE = 512
"""Long side at which ΔE is computed: a quarter of the work at 1024 px, and the mask is scaled back up
before it is grown, so its edge stays within a pixel or so of a full-size computation."""
ALIGN_SIDE = 256
"""Long side at which the shift between before and after is measured."""
MAX_SHIFT = 0.5
"""A shift (pixels at `ALIGN_SIDE`) above which the pair counts as misaligned."""


@dataclass(frozen=True)
class ChangeMask:
    """The edited pixels of a pair and how they were found.

    Attributes:
        mask: `[H, W]` bool.
        origin: `"given"` (the dataset's mask) or `"computed"`.
        noise: median ΔE over the image (the re-encoding's level), for `meta`.
        thresholds: (low, high) ΔE of the hysteresis; None for a given mask.
    """

    mask: np.ndarray
    origin: str
    noise: float
    thresholds: tuple[float, float] | None = None

    @property
    def area(self) -> float:
        return float(self.mask.mean())


def delta_e(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """`[h, w]` float32 CIE76 ΔE between lightly smoothed copies of two `[H, W, 3]` uint8 RGB images,
    at `DIFFERENCE_SIDE` on the long side (or full size when smaller)."""
    height, width = before.shape[:2]
    scale = min(1.0, DIFFERENCE_SIDE / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        before, after = (cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in (before, after))
    sigma = max(1.0, SMOOTHING_SHARE * max(before.shape[:2]))
    first, second = (cv2.GaussianBlur(to_lab(image), (0, 0), sigma) for image in (before, after))
    return np.sqrt(((first - second) ** 2).sum(axis=2))


def given_mask(mask: np.ndarray, before: np.ndarray, after: np.ndarray) -> ChangeMask:
    """The dataset's mask (`[H, W]` uint8, white = edited) as a `ChangeMask`."""
    return ChangeMask(mask > 127, "given", float(np.median(delta_e(before, after))))


def computed_mask(before: np.ndarray, after: np.ndarray) -> ChangeMask:
    """Where `after` differs from `before` beyond the pair's own noise (see the module docstring)."""
    distance = delta_e(before, after)
    median = float(np.median(distance))
    spread = min(MAX_SPREAD, 1.4826 * float(np.median(np.abs(distance - median))) + 0.25)
    noise = min(median, MAX_NOISE)
    low = max(LOW_FLOOR, noise + LOW_SIGMAS * spread)
    high = max(HIGH_FLOOR, noise + HIGH_SIGMAS * spread)
    weak = (distance > low).astype(np.uint8)
    count, labels = cv2.connectedComponents(weak, connectivity=8)
    strong_labels = np.unique(labels[distance > high])
    keep = np.zeros(count, bool)
    keep[strong_labels[strong_labels > 0]] = True
    mask = keep[labels].astype(np.uint8)
    radius = max(1, round(CLOSING_SHARE * max(mask.shape)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, disc)
    mask = _without_specks(mask, MIN_PIECE_SHARE * mask.size)
    height, width = before.shape[:2]
    if mask.shape != (height, width):
        mask = (cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5).astype(
            np.uint8
        )
    mask = cv2.dilate(mask, np.ones((2 * GROW + 1, 2 * GROW + 1), np.uint8))
    return ChangeMask(mask.astype(bool), "computed", median, (round(low, 3), round(high, 3)))


def misalignment(before: np.ndarray, after: np.ndarray) -> tuple[float, float] | None:
    """The (dx, dy) shift in full-size pixels by which `after` is displaced from `before`, or None when aligned.

    Phase correlation of the grey images at `ALIGN_SIDE`: a local edit leaves the peak at zero shift, a
    re-framed or shifted after image moves it.
    """
    height, width = before.shape[:2]
    scale = min(1.0, ALIGN_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    first, second = (
        cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA).astype(np.float32)
        for image in (before, after)
    )
    window = cv2.createHanningWindow(size, cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(first, second, window)
    if np.hypot(dx, dy) < MAX_SHIFT:
        return None
    return round(dx / scale, 1), round(dy / scale, 1)


def inner_alpha(mask: np.ndarray, radius: int) -> np.ndarray:
    """`[H, W]` float32 alpha: 0 outside `mask` and on its edge, rising smoothly to 1 at `radius` pixels inside.

    Compositing with it keeps every pixel outside the mask the original's, bit for bit, and hides the
    step between the two images inside the mask's rim.
    """
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    ramp = np.clip((distance - 0.5) / max(radius, 1), 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)


def _without_specks(mask: np.ndarray, min_pixels: float) -> np.ndarray:
    """`mask` (uint8) without its connected pieces smaller than `min_pixels`, holes filled."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_pixels
    return fill_holes(keep[labels]).astype(np.uint8)
