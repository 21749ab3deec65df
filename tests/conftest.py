"""Shared fixtures: small real chart datasets made through the real runner."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chart_edit.domain import DOMAIN, ChartConfig
from datagen.runner import RunOptions, run

SMALL = {"width": 256, "height": 192}


def make_chart_dataset(out: Path, *, num: int, seed: int = 0, workers: int = 1, shard_size: int = 6, **config) -> Path:
    """Run the real chart generator into `out` and return it."""
    run(
        DOMAIN,
        ChartConfig(**{**SMALL, **config}),
        RunOptions(out=out, num=num, seed=seed, workers=workers, shard_size=shard_size),
    )
    return out


def pairless_dataset(folder: Path) -> Path:
    """A folder in the Hub layout whose one shard lacks the pair schema (an image-classification table)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.table({"image": [b"x"], "label": [1]}), folder / "data" / "train-00000-of-00001.parquet")
    return folder


def content_hash(dataset_dir: Path) -> str:
    """sha256 over every shard file's bytes, in name order."""
    digest = hashlib.sha256()
    for path in sorted((dataset_dir / "data").glob("*.parquet")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def chart_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 chart pairs in 2 shards, made once per test session."""
    return make_chart_dataset(tmp_path_factory.mktemp("chart") / "ds", num=12, seed=3)
