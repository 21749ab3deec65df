"""Shard planning and writing: Parquet files that appear under their final name only when complete."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features

from datagen.errors import GenerationError
from datagen.features import PAIR_FEATURES
from datagen.files import atomic_path, sha256_file
from datagen.layout import DATA_DIR, shard_name

# Row groups of at most ~100 image rows, as `datasets` writes image data, and at most ~32 MB, so that a
# streaming read, a preview or a stats pass over 1024-px photos holds one small group at a time.
ROW_GROUP_SIZE = 100
ROW_GROUP_BYTES = 32 * 2**20


@dataclass(frozen=True)
class ShardPlan:
    """Shard `number` of `total` holds item indices `[start, stop)`."""

    number: int
    total: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        return shard_name(self.number, self.total)

    @property
    def relative_path(self) -> str:
        return f"{DATA_DIR}/{self.name}"


def plan_shards(num: int, shard_size: int) -> list[ShardPlan]:
    """Contiguous index ranges of `shard_size` items; the last shard may be shorter."""
    total = -(-num // shard_size)
    return [ShardPlan(k, total, k * shard_size, min((k + 1) * shard_size, num)) for k in range(total)]


def select_shards(plans: list[ShardPlan], job: tuple[int, int] | None) -> list[ShardPlan]:
    """The shards job `i` of `n` makes (`--shard i/n`): every n-th, starting at i."""
    if job is None:
        return plans
    index, count = job
    return [plan for plan in plans if plan.number % count == index]


def row_bytes(row: dict[str, Any]) -> int:
    """About what one encoded row takes in Arrow: its images (single or in lists), with its text as a small extra."""
    cells = [cell for value in row.values() for cell in (value if isinstance(value, list) else [value])]
    images = sum(len(cell["bytes"]) for cell in cells if isinstance(cell, dict) and "bytes" in cell)
    return images + len(row.get("meta", "")) + len(row.get("description", ""))


def row_group_size(rows: list[dict[str, Any]]) -> int:
    """Rows per group: `ROW_GROUP_SIZE`, fewer when the rows are large."""
    average = sum(map(row_bytes, rows)) / max(1, len(rows))
    return max(1, min(ROW_GROUP_SIZE, int(ROW_GROUP_BYTES // max(1.0, average))))


def write_parquet(rows: list[dict[str, Any]], path: Path, features: Features = PAIR_FEATURES) -> str:
    """Write `rows` (sorted by the caller) of `features` (pair records by default) to `path` as Parquet; its sha256.

    The schema carries `datasets`' feature metadata so that Image columns decode as images, locally
    and on the Hub. Rows become Arrow one row group at a time, so the parent never holds a second copy
    of a whole shard of large images. `path` is written in place: callers commit it atomically
    (`write_shard`, or a `Store`).
    """
    schema = features.arrow_schema
    group = row_group_size(rows)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(1, len(rows)), group):
            writer.write_table(pa.Table.from_pylist(rows[start : start + group], schema=schema))
    return sha256_file(path)


def write_shard(rows: list[dict[str, Any]], path: Path, features: Features = PAIR_FEATURES) -> str:
    """`write_parquet` under a temporary name, fsynced, then renamed to `path`: no partial shard is ever left behind.

    Raises:
        GenerationError: the file system refused the write (full disk, permissions).
    """
    try:
        with atomic_path(path) as temporary:
            write_parquet(rows, temporary, features)
    except OSError as error:
        raise GenerationError(f"cannot write shard {path}: {error.strerror or error}") from error
    return sha256_file(path)
