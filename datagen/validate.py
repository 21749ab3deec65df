"""Checks that a dataset folder is complete and intact before publishing: refuse now rather than after uploading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from datagen.errors import DatasetError
from datagen.features import PAIR_FEATURES
from datagen.files import sha256_file
from datagen.layout import DATA_DIR, MANIFEST_NAME, TOP_LEVEL_FILES
from datagen.manifest import Manifest, read_manifest

MAX_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class LocalFile:
    """A file of the folder as it will appear in the repository."""

    path: str
    """Relative POSIX path, e.g. `data/train-00000-of-00002.parquet`."""
    absolute: Path
    size: int


def folder_files(dataset_dir: Path) -> list[LocalFile]:
    """Every file under `dataset_dir`, skipping anything whose path has a dotted part (locks, temporaries, caches)."""
    found = []
    for path in sorted(dataset_dir.rglob("*")):
        relative = path.relative_to(dataset_dir)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append(LocalFile(relative.as_posix(), path, path.stat().st_size))
    return found


def shard_problems(dataset_dir: Path, manifest: Manifest) -> list[str]:
    """Each shard the manifest lists must exist, match its checksum and row count, and hold the pair schema."""
    problems = []
    expected_schema = PAIR_FEATURES.arrow_schema.remove_metadata()
    for entry in manifest.shards.values():
        path = dataset_dir / entry.path
        if not path.is_file():
            problems.append(f"{entry.path} is listed in {MANIFEST_NAME} but missing")
            continue
        if sha256_file(path) != entry.sha256:
            problems.append(f"{entry.path} does not match the sha256 in {MANIFEST_NAME} (changed or corrupt)")
            continue
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        if not schema.remove_metadata().equals(expected_schema) or b"huggingface" not in (schema.metadata or {}):
            problems.append(f"{entry.path} does not have the pair schema with its `datasets` feature metadata")
        elif parquet.metadata.num_rows != entry.records:
            rows = parquet.metadata.num_rows
            problems.append(f"{entry.path} holds {rows} rows, {MANIFEST_NAME} says {entry.records}")
    return problems


def validate_dataset(dataset_dir: Path) -> list[LocalFile]:
    """The files to publish from `dataset_dir`, after checking the folder is a complete, intact pair dataset.

    Raises:
        DatasetError: naming every problem found (missing or stray files, checksum, schema, incomplete run).
    """
    if not dataset_dir.is_dir():
        raise DatasetError(f"{dataset_dir} is not a folder")
    manifest = read_manifest(dataset_dir)
    if manifest is None:
        raise DatasetError(
            f"{dataset_dir} has no {MANIFEST_NAME}; only folders made by a vzero run or merge are published"
        )
    problems = []
    if not manifest.complete:
        counts = manifest.counts
        problems.append(
            f"the run is incomplete ({counts.shards_done} of {counts.shards_total} shards); "
            "re-run its command to finish it"
        )
    files = folder_files(dataset_dir)
    listed = {entry.path for entry in manifest.shards.values()}
    for name in TOP_LEVEL_FILES:
        if not (dataset_dir / name).is_file():
            problems.append(f"{name} is missing")
    problems += shard_problems(dataset_dir, manifest)
    for path in (f.path for f in files if f.path not in listed and f.path not in TOP_LEVEL_FILES):
        kind = f"a shard not listed in {MANIFEST_NAME}" if path.startswith(f"{DATA_DIR}/") else "a stray file"
        problems.append(f"{path} is {kind}; remove it or move it out of the folder")
    if problems:
        hidden = len(problems) - MAX_PROBLEMS_SHOWN
        shown = problems[:MAX_PROBLEMS_SHOWN] + ([f"... and {hidden} more"] if hidden > 0 else [])
        raise DatasetError(f"{dataset_dir} is not ready to publish:\n" + "\n".join(f"  - {line}" for line in shown))
    return files
