"""How hard a real-photo pair is to solve: from how small its change is and how subtle its edit kinds are."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def difficulty(mask: np.ndarray, subtleties: Sequence[float]) -> float:
    """0 easy .. 1 hard: half from how small the changed area is, half from the edits' subtlety (0..1 each).

    Areas are read on a log scale: 0.1% of the photo is hard to find, 20% is obvious.
    """
    area = max(float(mask.mean()), 1e-6)
    smallness = 1.0 - min(1.0, max(0.0, math.log10(area / 1e-3) / math.log10(0.2 / 1e-3)))
    return round(0.5 * smallness + 0.5 * float(np.mean(subtleties)), 4)
