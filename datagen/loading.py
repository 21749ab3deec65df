"""The one loader consumers (training, export) use: a local dataset folder or a Hub id, checked for the pair schema."""

from __future__ import annotations

from pathlib import Path

import datasets

from datagen.errors import DatasetError
from datagen.features import PAIR_FEATURES


def load_pairs(
    source: str | Path, *, split: str = "train", streaming: bool = False
) -> datasets.Dataset | datasets.IterableDataset:
    """Load pair records from a folder made by vzero or from a Hub dataset id such as `org/name`.

    Raises:
        DatasetError: the source does not exist, or its columns are not the pair schema.
    """
    local = Path(source)
    if local.exists():
        if not local.is_dir():
            raise DatasetError(f"{source} is a file; pass the dataset folder that holds data/*.parquet")
        pairs = datasets.load_dataset(str(local), split=split, streaming=streaming)
    else:
        if str(source).count("/") != 1:
            raise DatasetError(f"{source!r} is neither a local folder nor a Hub dataset id like 'org/name'")
        pairs = datasets.load_dataset(str(source), split=split, streaming=streaming)
    missing = set(PAIR_FEATURES) - set(pairs.features or {})
    if missing:
        raise DatasetError(f"{source} is not a pair dataset: missing column(s) {sorted(missing)}")
    return pairs
