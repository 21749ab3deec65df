"""Cheap reads of a dataset folder's shards for previews and statistics, without a `datasets` cache.

`datasets.load_dataset` converts a whole dataset into its Arrow cache (copying every image); a preview
of 12 pairs or a histogram of difficulties needs only a few columns, read straight from Parquet.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from datagen.errors import DatasetError
from datagen.layout import DATA_DIR

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def shard_paths(dataset_dir: Path) -> list[Path]:
    """The Parquet shards of a dataset folder in path order, including a merged folder's `data/<domain>/` ones."""
    if not dataset_dir.is_dir():
        raise DatasetError(f"{dataset_dir} is not a folder")
    paths = sorted((dataset_dir / DATA_DIR).rglob("*.parquet"))
    if not paths:
        raise DatasetError(f"{dataset_dir} has no {DATA_DIR}/*.parquet shards; is it a vision-zero dataset folder?")
    return paths


def iter_rows(dataset_dir: Path, columns: list[str], limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Rows (only `columns`) of every shard in order, stopping after `limit` rows."""
    produced = 0
    for path in shard_paths(dataset_dir):
        parquet = pq.ParquetFile(path)
        missing = [column for column in columns if column not in parquet.schema_arrow.names]
        if missing:
            raise DatasetError(f"{path} lacks the pair column(s) {missing}")
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
