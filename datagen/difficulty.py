"""The one difficulty score every domain gives its pairs: how small the change is and how subtle its edit kinds are.

One formula, so that `difficulty` means the same in every domain of a merged dataset (the card's histogram,
evaluation by difficulty bin); a domain chooses only the area it counts as a needle in a haystack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

OBVIOUS_AREA = 0.2
"""A change covering this share of the image (or more) is as easy to see as it gets."""


def difficulty(mask: np.ndarray, subtleties: Sequence[float], *, hard_area: float) -> float:
    """0 easy .. 1 hard: half from how small the changed area is, half from the edits' subtlety (0..1 each).

    Areas are read on a log scale between `hard_area` (a share of the image this small or smaller is as hard to
    find as it gets: 1e-4 for drawn charts and scenes, 1e-3 for busy photos) and `OBVIOUS_AREA`.

    Args:
        mask: `[H, W]` bool, the pair's `diff_mask`.
        subtleties: one per edit, 0 obvious .. 1 subtle.
        hard_area: the changed share of the image that scores 1 for smallness.
    """
    if not subtleties:
        raise ValueError("difficulty needs the subtlety of at least one edit")
    area = max(float(mask.mean()), 1e-6)
    smallness = 1.0 - min(1.0, max(0.0, math.log10(area / hard_area) / math.log10(OBVIOUS_AREA / hard_area)))
    return round(0.5 * smallness + 0.5 * float(np.mean(subtleties)), 4)
