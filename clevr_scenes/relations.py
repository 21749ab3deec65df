"""CLEVR's spatial relationships between objects on the ground: left, right, front, behind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RELATION_EPS = 0.2
"""CLEVR's threshold: b is left of a when b - a reaches more than this far along the "left" direction."""
RELATIONS: tuple[str, ...] = ("left", "right", "front", "behind")


def relationships(
    coords: Sequence[Sequence[float]], directions: Mapping[str, Sequence[float]], eps: float = RELATION_EPS
) -> dict[str, list[list[int]]]:
    """CLEVR's relationship lists: `result[name][i]` = sorted indices j whose object is `name` of object i.

    Args:
        coords: `[N, 3]` object centres, in the order of the scene's object list.
        directions: unit vectors keyed by name (at least the four in RELATIONS).
        eps: how far along a direction j must be from i to count.
    """
    points = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    result: dict[str, list[list[int]]] = {}
    for name in RELATIONS:
        along = points @ np.asarray(directions[name], dtype=np.float64)  # [N]
        offsets = along[None, :] - along[:, None]  # [i, j]: how far j is from i along the direction
        result[name] = [[int(j) for j in np.flatnonzero(row > eps) if j != i] for i, row in enumerate(offsets)]
    return result
