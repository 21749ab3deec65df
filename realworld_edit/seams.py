"""The seam check: an edit whose border shows an edge or a texture break the photo does not have there is refused.

Measured on grey levels around the footprint of the change (the pixels it may alter), spy against civilian:

- gradient jump: on the footprint's rim (a band straddling its border, as wide as the feather's ramp), the
  share of pixels whose gradient in the spy is well above the civilian's at the same pixel; a cut-out edge,
  a hard paste or a darkened patch of plain sky shows as a new edge along part of the border;
- texture break: the ratio of fine texture (local mean of the absolute Laplacian) just inside the border
  to just outside it, in the spy, against the same ratio in the civilian; a smooth fill in grass, or a
  busy paste on a plain wall, moves it far from the photo's own.
"""

from __future__ import annotations

import cv2
import numpy as np

from realworld_edit.blending import Box, Patch, crop, grow_box, place

RIM = 2
"""Pixels beyond the footprint, and beyond the edit's feather inside it, on which gradient jumps are measured."""
TEXTURE_BAND = 6
"""Width in pixels of the bands inside and outside the border whose texture is compared."""
MAX_GRADIENT_RATIO = 1.8
"""A rim pixel's gradient may exceed the civilian's there by this factor (plus `GRADIENT_SLACK`)."""
GRADIENT_SLACK = 3.0
"""Grey levels per pixel of gradient always allowed, so that edits in flat areas are not refused for noise."""
MAX_SEAM_SHARE = 0.2
"""Share of the rim that may show such a new edge: more is a seam along a good part of the border."""
MAX_TEXTURE_FACTOR = 2.5
"""The inside/outside texture ratio may differ from the civilian's by this factor either way."""
TEXTURE_FLOOR = 2.0
"""Mean absolute Laplacian below which a band counts as flat: flat against flat is no break."""


def seam_problem(civilian: np.ndarray, change: Patch, feather: int) -> str:
    """Why the change shows a seam ("" when it does not).

    Args:
        civilian: `[H, W, 3]` uint8, the image before the edit.
        change: the edit's merged patch.
        feather: the edit's feather radius: its border fades over about twice that, inside the footprint.
    """
    height, width = civilian.shape[:2]
    box = grow_box(change.box, TEXTURE_BAND + RIM + 2, width, height)
    footprint = place(change.footprint, change.box, box)
    if not footprint.any():
        return ""
    before = cv2.cvtColor(crop(civilian, box), cv2.COLOR_RGB2GRAY).astype(np.float32)
    after = before.copy()
    inner = _inner(change.box, box)
    spy_pixels = cv2.cvtColor(change.pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)
    np.copyto(crop(after, inner), spy_pixels, where=change.footprint)
    inside_distance = cv2.distanceTransform(footprint.astype(np.uint8), cv2.DIST_L2, 3)
    outside_distance = cv2.distanceTransform((~footprint).astype(np.uint8), cv2.DIST_L2, 3)
    ramp = 2 * feather
    rim = (footprint & (inside_distance <= ramp + RIM)) | (~footprint & (outside_distance <= RIM))
    gradient_before, gradient_after = (_gradient(image)[rim] for image in (before, after))
    seam_share = float((gradient_after > MAX_GRADIENT_RATIO * gradient_before + GRADIENT_SLACK).mean())
    if seam_share > MAX_SEAM_SHARE:
        return f"its border shows a seam (a new edge along {seam_share:.0%} of its rim)"
    # Texture is compared past the feather's ramp, where the edit shows at full strength.
    inside = footprint & (inside_distance > ramp) & (inside_distance <= ramp + TEXTURE_BAND)
    outside = ~footprint & (outside_distance <= TEXTURE_BAND)
    if not inside.any() or not outside.any():
        return ""
    ratio_before, ratio_after = (_texture_ratio(image, inside, outside) for image in (before, after))
    if abs(np.log(ratio_after / ratio_before)) > np.log(MAX_TEXTURE_FACTOR):
        return f"its texture breaks at the border (inside/outside {ratio_after:.2f}, the photo's {ratio_before:.2f})"
    return ""


def _inner(inner: Box, outer: Box) -> Box:
    return inner[0] - outer[0], inner[1] - outer[1], inner[2] - outer[0], inner[3] - outer[1]


def _gradient(gray: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude in grey levels per pixel, averaged over 3×3 so that one pixel's noise does not count."""
    magnitude = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    return cv2.blur(magnitude / 8, (3, 3))


def _texture_ratio(gray: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> float:
    """Fine texture just inside over just outside, each at least `TEXTURE_FLOOR` (flat is flat, whatever its noise)."""
    texture = np.abs(cv2.Laplacian(gray, cv2.CV_32F, ksize=3))
    return max(TEXTURE_FLOOR, float(texture[inside].mean())) / max(TEXTURE_FLOOR, float(texture[outside].mean()))
