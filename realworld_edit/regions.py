"""Which parts of a photo to edit: annotated object masks, or object-like regions proposed by classical vision.

Proposals are made on a copy whose long side is `WORK_SIDE` pixels (a few tens of milliseconds whatever
the photo's size) and their masks are scaled back up: colour segments (k-means in CIELAB) and
spectral-residual saliency blobs give candidates; compact ones that stand out from their surroundings
in colour and have some texture, away from the border, score best; GrabCut snaps the best few to the
object's outline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from realworld_edit.blending import Box, crop, fill_holes, grow_box, place
from realworld_edit.sources import ObjectMask
from realworld_edit.wording import to_lab

MIN_AREA, MAX_AREA = 0.005, 0.15
"""Bounds on a region's area as a fraction of the image."""
WORK_SIDE = 256
"""Long side, in pixels, of the copy proposals are computed on."""
BORDER = 0.03
"""Fraction of each side a proposal's box must keep clear of the image border."""
MAX_ASPECT = 4.0
"""Longest box side over shortest: thinner regions are strokes and edges, not objects."""
MIN_SOLIDITY = 0.5
"""Area over convex-hull area: below it a region is a sprawling patch of background."""
MAX_EXTENT = 0.9
"""Share of its box above which a region is a slab of background cut by straight lines, not an object."""
MIN_CONTRAST = 6.0
"""CIELAB distance between a region's mean colour and its surroundings' below which nobody would see it."""
COLOUR_CLUSTERS = 8
"""Colour clusters of the k-means segmentation."""
KMEANS_STRIDE = 7
"""Every this-many-th pixel is used to fit the k-means centres."""
GRABCUT_SIDE = 64
"""Long side, in pixels, GrabCut crops are shrunk to: its cost grows fast with size and outlines need no more."""
SALIENCY_THRESHOLDS = (2.0, 3.5)
"""Multiples of the mean saliency at which salient blobs are cut out as candidates."""
GRABCUT_ITERATIONS = 2
UPSCALE_SMOOTHING = 0.7
"""Gaussian sigma (working-copy pixels) applied to a proposal's mask before it is scaled up to the photo."""
SUPERPIXEL_SIZE = 6
"""Side in working-copy pixels of the SLIC superpixels proposals are snapped to (about 1,800 on 256 px)."""
SNAP_SHARE = 0.5
"""A superpixel joins a proposal when at least this share of it lies inside."""


@dataclass(frozen=True)
class Region:
    """One editable part of a photo.

    Attributes:
        box: `(x0, y0, x1, y1)` of the region in the full-size photo.
        mask: `[y1 - y0, x1 - x0]` bool, the region's pixels inside `box`.
        score: how good a target it is (0..1, higher first); annotated objects score 1.
        origin: `"annotation"` or `"proposal"`.
        label: the annotation's category, "" for proposals.
    """

    box: Box
    mask: np.ndarray
    score: float
    origin: str
    label: str = ""

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    def meta(self) -> dict[str, Any]:
        """JSON-ready description for a record's `meta`."""
        return {
            "box": list(self.box),
            "area": self.area,
            "score": round(self.score, 4),
            "origin": self.origin,
            "label": self.label,
        }


def annotated_regions(objects: tuple[ObjectMask, ...], height: int, width: int) -> list[Region]:
    """The annotated objects whose area is within `MIN_AREA`..`MAX_AREA` of the image, largest first."""
    regions = []
    for item in objects:
        area = int(item.mask.sum())
        if not MIN_AREA <= area / (height * width) <= MAX_AREA:
            continue
        ys, xs = np.nonzero(item.mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        regions.append(Region(box, crop(item.mask, box).copy(), 1.0, "annotation", item.category))
    regions.sort(key=lambda region: -region.area)
    return regions


@dataclass(frozen=True)
class _Candidate:
    """A proposal on the working copy: box and mask there, plus its score."""

    box: Box
    mask: np.ndarray
    score: float = 0.0


def propose_regions(pixels: np.ndarray, *, limit: int = 6) -> list[Region]:
    """Up to `limit` non-overlapping object-like regions of a photo, best first.

    Args:
        pixels: `[H, W, 3]` uint8 RGB.
        limit: how many regions to return at most.

    Returns:
        Regions with masks at full size; empty for a photo with nothing that stands out (e.g. plain sky).
    """
    height, width = pixels.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small = pixels if scale == 1.0 else cv2.resize(pixels, _scaled(width, height, scale), interpolation=cv2.INTER_AREA)
    lab = to_lab(small)
    saliency = spectral_residual_saliency(small)
    scored = []
    for candidate in _candidates(small, lab, saliency):
        score = _score(candidate, lab, saliency)
        if score > 0:
            scored.append(_Candidate(candidate.box, candidate.mask, score))
    superpixels = slic_superpixels(lab)
    chosen = [_snapped(c, superpixels) for c in _refined(_non_overlapping(scored, limit, small.shape[:2]), small)]
    return [_upscaled(candidate, scale, height, width) for candidate in chosen]


def spectral_residual_saliency(pixels: np.ndarray) -> np.ndarray:
    """`[H, W]` float32 saliency in 0..1: where the log spectrum departs from its local average (Hou & Zhang 2007).

    Computed at 64 pixels on the long side, where it finds object-sized blobs, then resized back.
    """
    height, width = pixels.shape[:2]
    side = 64 / max(height, width)
    gray = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, _scaled(width, height, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-6).astype(np.float32)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 2.5)
    saliency /= max(float(saliency.max()), 1e-12)
    return cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def _candidates(small: np.ndarray, lab: np.ndarray, saliency: np.ndarray) -> list[_Candidate]:
    """Colour segments and salient blobs whose size, place and shape could be an object."""
    height, width = small.shape[:2]
    min_pixels = int(MIN_AREA * height * width)
    segments = colour_segments(lab, COLOUR_CLUSTERS)
    layers = [segments == cluster for cluster in range(COLOUR_CLUSTERS)]
    mean = float(saliency.mean())
    layers += [saliency > threshold * mean for threshold in SALIENCY_THRESHOLDS]
    opening = np.ones((3, 3), np.uint8)
    candidates = []
    for layer in layers:
        layer = cv2.morphologyEx(layer.astype(np.uint8), cv2.MORPH_OPEN, opening)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(layer, connectivity=8)
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            box = (x, y, x + w, y + h)
            if area < min_pixels or not _plausible_box(box, height, width, min_pixels):
                continue
            mask = fill_holes(crop(labels, box) == label)
            if _plausible_shape(mask, height * width):
                candidates.append(_Candidate(box, mask))
    return candidates


def colour_segments(lab: np.ndarray, clusters: int) -> np.ndarray:
    """`[H, W]` int32 colour cluster of each pixel: k-means on CIELAB of a lightly smoothed copy.

    A cheap stand-in for superpixels (connected pieces of one cluster are the segments): the centres
    are fitted on every `KMEANS_STRIDE`-th pixel, then every pixel takes its nearest centre.
    """
    smooth = cv2.GaussianBlur(lab, (5, 5), 1.0).reshape(-1, 3)
    # k-means++ seeding draws from OpenCV's global RNG: reseed so the result depends only on the photo.
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 8, 0.5)
    _, _, centres = cv2.kmeans(
        np.ascontiguousarray(smooth[::KMEANS_STRIDE]), clusters, None, criteria, 1, cv2.KMEANS_PP_CENTERS
    )
    distances = (smooth**2).sum(axis=1, keepdims=True) - 2 * smooth @ centres.T + (centres**2).sum(axis=1)
    return distances.argmin(axis=1).reshape(lab.shape[:2])


def _plausible_box(box: Box, height: int, width: int, min_pixels: int) -> bool:
    x0, y0, x1, y1 = box
    margin_x, margin_y = BORDER * width, BORDER * height
    if x0 < margin_x or y0 < margin_y or x1 > width - margin_x or y1 > height - margin_y:
        return False
    box_width, box_height = x1 - x0, y1 - y0
    return (
        box_width * box_height >= min_pixels
        and max(box_width, box_height) <= MAX_ASPECT * min(box_width, box_height)
        and box_width * box_height <= 3 * MAX_AREA * height * width
    )


def _plausible_shape(mask: np.ndarray, image_pixels: int) -> bool:
    area = int(mask.sum())
    if not MIN_AREA * image_pixels <= area <= MAX_AREA * image_pixels:
        return False
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull_area = max(cv2.contourArea(cv2.convexHull(np.concatenate(contours))), 1.0)
    return area / hull_area >= MIN_SOLIDITY


def _score(candidate: _Candidate, lab: np.ndarray, saliency: np.ndarray) -> float:
    """0 (unusable) .. 1: colour contrast with a ring around it, texture, saliency, compactness.

    Contrast weighs most: a region that does not stand out from its surroundings makes an invisible edit.
    """
    height, width = lab.shape[:2]
    ring_width = max(2, round(0.15 * np.sqrt(candidate.mask.sum())))
    outer = grow_box(candidate.box, ring_width, width, height)
    inside = place(candidate.mask, candidate.box, outer)
    ring = cv2.dilate(inside.astype(np.uint8), np.ones((2 * ring_width + 1,) * 2, np.uint8)).astype(bool) & ~inside
    region_lab = crop(lab, outer)
    contrast = float(np.linalg.norm(region_lab[inside].mean(axis=0) - region_lab[ring].mean(axis=0)))
    if contrast < MIN_CONTRAST or candidate.mask.mean() > MAX_EXTENT:
        return 0.0
    texture = float(region_lab[inside][:, 0].std())
    salient = float(crop(saliency, outer)[inside].mean()) / max(3.0 * float(saliency.mean()), 1e-6)
    extent = float(candidate.mask.mean())
    return (
        0.45 * min(1.0, contrast / 40.0)
        + 0.2 * min(1.0, texture / 15.0)
        + 0.2 * min(1.0, salient)
        + 0.15 * min(1.0, extent / 0.7)
    )


def _non_overlapping(candidates: list[_Candidate], limit: int, shape: tuple[int, int]) -> list[_Candidate]:
    """The best `limit` candidates, each overlapping no better one by more than a fifth of its area."""
    taken = np.zeros(shape, bool)
    chosen = []
    for candidate in sorted(candidates, key=lambda c: (-c.score, c.box)):
        overlap = int((crop(taken, candidate.box) & candidate.mask).sum())
        if overlap > 0.2 * candidate.mask.sum():
            continue
        crop(taken, candidate.box)[candidate.mask] = True
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return chosen


def _refined(candidates: list[_Candidate], small: np.ndarray) -> list[_Candidate]:
    """Candidates snapped to object outlines by GrabCut, kept as they were where GrabCut drifts away."""
    height, width = small.shape[:2]
    refined = []
    for candidate in candidates:
        outer = grow_box(candidate.box, max(4, max(_box_size(candidate.box)) // 4), width, height)
        seed = place(candidate.mask, candidate.box, outer)
        snapped = _grabcut(crop(small, outer), seed)
        if snapped is not None and _agrees(snapped, seed, height * width):
            ys, xs = np.nonzero(snapped)
            local = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            box = (outer[0] + local[0], outer[1] + local[1], outer[0] + local[2], outer[1] + local[3])
            if _plausible_box(box, height, width, 1):
                candidate = _Candidate(box, crop(snapped, local).copy(), candidate.score)
        refined.append(candidate)
    return refined


def _box_size(box: Box) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def _agrees(snapped: np.ndarray, seed: np.ndarray, image_pixels: int) -> bool:
    """GrabCut's mask is kept when it overlaps the seed by half (IoU) and stays within the area bounds."""
    union = int((snapped | seed).sum())
    area = int(snapped.sum())
    return (snapped & seed).sum() >= 0.5 * union and MIN_AREA * image_pixels <= area <= MAX_AREA * image_pixels


def _grabcut(pixels: np.ndarray, seed: np.ndarray) -> np.ndarray | None:
    """GrabCut on `pixels` `[h, w, 3]` seeded with `seed` `[h, w]` bool as probable foreground.

    Runs on a copy shrunk to `GRABCUT_SIDE`; the result is scaled back to `[h, w]`.

    Returns:
        `[h, w]` bool, the largest foreground component with holes filled, or None when there is no
        certain background or foreground to start from, or nothing is left.
    """
    height, width = seed.shape
    shrink = min(1.0, GRABCUT_SIDE / max(height, width))
    if shrink < 1.0:
        size = _scaled(width, height, shrink)
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        seed = cv2.resize(seed.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    inside = seed.astype(np.uint8)
    near = cv2.dilate(inside, np.ones((5, 5), np.uint8))
    core = cv2.erode(inside, np.ones((5, 5), np.uint8))
    labels = np.full(seed.shape, cv2.GC_BGD, np.uint8)
    labels[near > 0] = cv2.GC_PR_BGD
    labels[inside > 0] = cv2.GC_PR_FGD
    labels[core > 0] = cv2.GC_FGD
    if not (labels == cv2.GC_BGD).any() or not core.any():
        return None
    # GrabCut initialises its colour models with k-means drawn from OpenCV's global RNG: reseed it so
    # that a region depends only on the photo, not on what this process computed before.
    cv2.setRNGSeed(0)
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(np.ascontiguousarray(pixels), labels, None, *models, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    foreground = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
    count, components, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count < 2:
        return None
    largest = (components == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    if shrink < 1.0:
        largest = cv2.resize(largest, (width, height), interpolation=cv2.INTER_LINEAR)
    return fill_holes(largest > 0)


def slic_superpixels(lab: np.ndarray) -> np.ndarray:
    """`[H, W]` int32 superpixel label of each pixel: SLICO (opencv-contrib's ximgproc) on the CIELAB working copy."""
    slic = cv2.ximgproc.createSuperpixelSLIC(lab, cv2.ximgproc.SLICO, SUPERPIXEL_SIZE)
    slic.iterate(5)
    return slic.getLabels()


def _snapped(candidate: _Candidate, superpixels: np.ndarray) -> _Candidate:
    """The candidate's mask replaced by the superpixels it mostly covers, so that it follows colour boundaries.

    Kept as it was when snapping would change it much (IoU below 0.6) or empty it.
    """
    labels = crop(superpixels, candidate.box)
    inside = np.bincount(labels[candidate.mask], minlength=int(superpixels.max()) + 1)
    total = np.bincount(superpixels.ravel(), minlength=inside.size)
    covered = inside >= SNAP_SHARE * np.maximum(total, 1)
    snapped = covered[labels]
    union = int((snapped | candidate.mask).sum())
    if not snapped.any() or (snapped & candidate.mask).sum() < 0.6 * union:
        return candidate
    return _Candidate(candidate.box, fill_holes(snapped), candidate.score)


def _upscaled(candidate: _Candidate, scale: float, height: int, width: int) -> Region:
    """The candidate as a `Region` of the full-size photo, its mask resized smoothly."""
    x0, y0, x1, y1 = candidate.box
    box = (
        int(np.floor(x0 / scale)),
        int(np.floor(y0 / scale)),
        min(width, int(np.ceil(x1 / scale))),
        min(height, int(np.ceil(y1 / scale))),
    )
    size = (box[2] - box[0], box[3] - box[1])
    # Smoothed before the cubic upscale, so that outlines come out round rather than as the working copy's steps.
    soft = cv2.GaussianBlur(np.pad(candidate.mask.astype(np.float32), 2), (0, 0), UPSCALE_SMOOTHING)[2:-2, 2:-2]
    mask = cv2.resize(soft, size, interpolation=cv2.INTER_CUBIC) > 0.5
    return Region(box, mask, round(candidate.score, 6), "proposal")
