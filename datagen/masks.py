"""Difference masks and boxes computed from two renders, shared by every domain."""

from __future__ import annotations

import cv2
import numpy as np


def difference_mask(civilian: np.ndarray, spy: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Pixels where any channel differs by more than `tolerance`.

    Args:
        civilian: `[H, W, 3]` uint8.
        spy: `[H, W, 3]` uint8, same shape.
        tolerance: largest per-channel difference still counted as equal.

    Returns:
        `[H, W]` bool.
    """
    if civilian.shape != spy.shape:
        raise ValueError(f"images differ in shape: {civilian.shape} vs {spy.shape}")
    return channel_max(cv2.absdiff(civilian, spy)) > tolerance


def channel_max(pixels: np.ndarray) -> np.ndarray:
    """`[H, W, C] -> [H, W]` maximum over channels; ~20x faster than `pixels.max(axis=2)` on uint8 images."""
    result = pixels[..., 0].copy()
    for channel in range(1, pixels.shape[2]):
        np.maximum(result, pixels[..., channel], out=result)
    return result


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a bool mask by `radius` pixels (square structuring element)."""
    if radius <= 0:
        return mask.copy()
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def boxes_from_mask(mask: np.ndarray, merge_radius: int = 4, min_pixels: int = 1) -> list[list[int]]:
    """One `[x0, y0, x1, y1]` box (exclusive end) per connected region of `mask`.

    Regions closer than `merge_radius` pixels are merged first, so that the glyphs of a changed word or
    the antialiased edge of a changed bar give one box, not dozens.
    """
    grown = dilate(mask, merge_radius).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    boxes: list[list[int]] = []
    for label in range(1, count):
        x, y, w, h = (int(v) for v in stats[label, :4])
        inside = (labels[y : y + h, x : x + w] == label) & mask[y : y + h, x : x + w]
        ys, xs = np.nonzero(inside)
        if ys.size < min_pixels:
            continue
        boxes.append([x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1])
    boxes.sort(key=lambda box: (box[1], box[0]))
    return boxes
