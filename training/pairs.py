"""The training data stream: pair records in a seeded order, epoch after epoch, with a resumable position.

The order of epoch e is a permutation drawn from (seed, e) alone, so the position (records consumed so far) is
the whole state: a resumed run continues with exactly the records an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from datagen.errors import DatasetError


class PairStream:
    """Records of a (map-style) pair dataset in a seeded, per-epoch shuffled order."""

    def __init__(self, dataset: Any, *, seed: int, position: int = 0) -> None:
        if len(dataset) == 0:
            raise DatasetError("the pair dataset has no records to train on")
        self.dataset = dataset
        self.seed = seed
        self.position = position
        self._epoch: int | None = None
        self._order: np.ndarray | None = None

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.dataset))
        if epoch != self._epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
            self._epoch = epoch
        return int(self._order[offset])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        """The next record (images decoded), advancing the position."""
        record = self.dataset[self._index(self.position)]
        self.position += 1
        return record

    @property
    def epoch(self) -> float:
        """Fractional epochs consumed, for the logs."""
        return self.position / len(self.dataset)
