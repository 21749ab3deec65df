"""The quality gate every pair passes before it is written, whatever domain made it."""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from datagen.errors import QualityRejected
from datagen.masks import channel_max, dilate
from datagen.record import Pair


@dataclass(frozen=True)
class QualityGate:
    """Per-domain thresholds; a domain passes its own instance when it registers."""

    tolerance: int = 0
    """Largest per-channel difference allowed outside the dilated mask (0 = identical)."""
    mask_dilation: int = 2
    """Pixels the mask is grown by before checking that the outside is unchanged."""
    changed_threshold: int = 24
    """Per-channel difference that makes a pixel count as clearly changed."""
    min_changed_pixels: int = 30
    """Fewest clearly changed pixels a pair must have inside its mask."""
    max_area_fraction: float = 0.5
    """Largest fraction of the image the mask may cover."""

    def check(self, pair: Pair) -> None:
        """Raise `QualityRejected` naming the first failed rule."""
        civilian, spy, mask = pair.civilian, pair.spy, pair.diff_mask
        if civilian.shape != spy.shape:
            raise QualityRejected(f"image sizes differ: civilian {civilian.shape}, spy {spy.shape}")
        if mask.shape != civilian.shape[:2]:
            raise QualityRejected(f"diff_mask shape {mask.shape} does not match image {civilian.shape[:2]}")
        delta = channel_max(cv2.absdiff(civilian, spy))
        outside = ~dilate(mask.astype(bool), self.mask_dilation)
        leaked = int((delta[outside] > self.tolerance).sum())
        if leaked:
            raise QualityRejected(f"{leaked} pixels differ outside diff_mask (tolerance {self.tolerance})")
        changed = int((delta[mask.astype(bool)] >= self.changed_threshold).sum())
        if changed < self.min_changed_pixels:
            raise QualityRejected(
                f"only {changed} clearly changed pixels inside diff_mask (minimum {self.min_changed_pixels})"
            )
        area = float(mask.mean())
        if area > self.max_area_fraction:
            raise QualityRejected(f"diff_mask covers {area:.1%} of the image (maximum {self.max_area_fraction:.0%})")
        if not pair.diff_boxes:
            raise QualityRejected("diff_boxes is empty although diff_mask is not")
