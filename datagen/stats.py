"""Dataset statistics shared by `vzero info` and the dataset card."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datagen.manifest import read_manifest
from datagen.reading import iter_rows, png_size
from datagen.store import Store, open_store

DIFFICULTY_BINS = 10


@dataclass
class DatasetStats:
    """Counts over every record of a dataset folder, plus the run's rejects from its manifest."""

    records: int = 0
    domains: Counter = field(default_factory=Counter)
    edit_ops: Counter = field(default_factory=Counter)
    domain_edit_ops: Counter = field(default_factory=Counter)
    """`(domain, op)` counts, for datasets that merge several domains."""
    edits_per_pair: Counter = field(default_factory=Counter)
    image_sizes: Counter = field(default_factory=Counter)
    difficulty_histogram: list[int] = field(default_factory=lambda: [0] * DIFFICULTY_BINS)
    retried: int = 0
    skipped: int = 0
    inputs_skipped: int = 0
    planned: int | None = None


def compute_stats(dataset: Store | Path | str) -> DatasetStats:
    """Read the light columns of every shard (images only for their PNG headers)."""
    store = open_store(dataset)
    stats = DatasetStats()
    for row in iter_rows(store, ["domain", "edits", "difficulty", "civilian"]):
        stats.records += 1
        stats.domains[row["domain"]] += 1
        stats.edits_per_pair[len(row["edits"])] += 1
        stats.edit_ops.update(edit["op"] for edit in row["edits"])
        stats.domain_edit_ops.update((row["domain"], edit["op"]) for edit in row["edits"])
        width, height = png_size(row["civilian"]["bytes"])
        stats.image_sizes[f"{width}x{height}"] += 1
        bin_index = min(int(row["difficulty"] * DIFFICULTY_BINS), DIFFICULTY_BINS - 1)
        stats.difficulty_histogram[max(bin_index, 0)] += 1
    manifest = read_manifest(store)
    if manifest is not None:
        counts = manifest.counts
        stats.retried, stats.skipped, stats.planned = counts.retried, counts.skipped, counts.planned
        stats.inputs_skipped = len(manifest.input_report)
    return stats
