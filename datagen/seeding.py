"""Per-item randomness derived from (run seed, index, attempt), never from a global RNG.

Deriving each item's seed from its coordinates makes an item's content independent of which worker,
shard or order produced it: that one property gives parallelism, sharding, resume and reproducibility.
"""

from __future__ import annotations

import numpy as np


def item_seed(run_seed: int, index: int, attempt: int = 0) -> int:
    """The 63-bit seed of one item; `attempt` > 0 gives the seeds used to regenerate a rejected item."""
    if run_seed < 0 or index < 0 or attempt < 0:
        raise ValueError(f"seed coordinates must be non-negative, got {(run_seed, index, attempt)}")
    state = np.random.SeedSequence([run_seed, index, attempt]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def item_rng(seed: int) -> np.random.Generator:
    """The generator a domain uses for every random choice of one item."""
    return np.random.default_rng(seed)
