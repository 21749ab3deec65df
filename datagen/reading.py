"""Cheap reads of a dataset folder's shards for previews and statistics, without a `datasets` cache.

`datasets.load_dataset` converts a whole dataset into its Arrow cache (copying every image); a preview
of 12 pairs or a histogram of difficulties needs only a few columns, read straight from Parquet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datagen.errors import DatasetError
from datagen.layout import DATA_DIR
from datagen.store import Store, open_store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def shard_files(dataset: Store | Path | str) -> list[str]:
    """Relative paths of a dataset's Parquet shards in path order, including a merged folder's `data/<domain>/` ones."""
    store = open_store(dataset)
    if not store.is_folder():
        raise DatasetError(f"{store.location} is not a folder")
    found = store.glob(f"{DATA_DIR}/**/*.parquet")
    if not found:
        raise DatasetError(f"{store.location} has no {DATA_DIR}/*.parquet shards; is it a vision-zero dataset folder?")
    return found


def shard_paths(dataset_dir: Path) -> list[Path]:
    """The Parquet shards of a local dataset folder in path order (see `shard_files`)."""
    return [dataset_dir / relative for relative in shard_files(dataset_dir)]


def iter_rows(dataset: Store | Path | str, columns: list[str], limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Rows (only `columns`) of every shard in order, stopping after `limit` rows."""
    store = open_store(dataset)
    produced = 0
    for relative in shard_files(store):
        parquet = store.parquet(relative)
        missing = [column for column in columns if column not in parquet.schema_arrow.names]
        if missing:
            raise DatasetError(f"{store.describe(relative)} lacks the pair column(s) {missing}")
        for batch in parquet.iter_batches(batch_size=64, columns=columns):
            for row in batch.to_pylist():
                if limit is not None and produced >= limit:
                    return
                produced += 1
                yield row


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header, without decoding it."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise DatasetError("image bytes are not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height
