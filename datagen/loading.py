"""The one loader of datasets, from a local folder or a Hub id, checked for its schema: pairs or "what changed?"
questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from datagen.configs import dataset_configs
from datagen.errors import DatasetError
from datagen.features import PAIR_FEATURES, QA_FEATURES
from datagen.reading import shard_paths


def load_pairs(
    source: str | Path, *, split: str = "train", streaming: bool = False, config: str | None = None
) -> datasets.Dataset | datasets.IterableDataset:
    """Load pair records from a folder made by vzero or from a Hub dataset id such as `org/name`.

    `config` picks one domain of a merged dataset (e.g. `"chart"`); by default a merged dataset loads
    its `all` config, every domain.

    Raises:
        DatasetError: the source does not exist, holds no Parquet shards, cannot be read, or its columns
            are not the pair schema.
    """
    return _load(source, PAIR_FEATURES, "a pair dataset", split=split, streaming=streaming, config=config)


def load_questions(
    source: str | Path, *, split: str = "train", streaming: bool = False, config: str | None = None
) -> datasets.Dataset | datasets.IterableDataset:
    """Load "what changed?" questions (a folder made by `vzero qa`, or its Hub id), e.g. as RLVR data.

    Raises:
        DatasetError: as `load_pairs`, for the question schema.
    """
    return _load(source, QA_FEATURES, "a question dataset", split=split, streaming=streaming, config=config)


def _load(
    source: str | Path, features: datasets.Features, kind: str, *, split: str, streaming: bool, config: str | None
) -> datasets.Dataset | datasets.IterableDataset:
    local = Path(source)
    if local.exists():
        if not local.is_dir():
            raise DatasetError(f"{source} is a file; pass the dataset folder that holds data/*.parquet")
        arguments = _local_shards(local, config)
    elif str(source).count("/") != 1:
        raise DatasetError(f"{source!r} is neither a local folder nor a Hub dataset id like 'org/name'")
    else:
        arguments = {"path": str(source), "name": config}
    try:
        loaded = datasets.load_dataset(**arguments, split=split, streaming=streaming)
    except (ValueError, OSError) as error:  # `datasets` reports unreadable data and unreachable ids with these
        raise DatasetError(f"cannot load {source}: {error}") from error
    missing = set(features) - set(loaded.features or {})
    if missing:
        raise DatasetError(f"{source} is not {kind}: missing column(s) {sorted(missing)}")
    return loaded


def _local_shards(folder: Path, config: str | None) -> dict[str, Any]:
    """`load_dataset` arguments reading the shards of one config of a local folder by their absolute paths.

    Loading the folder by its path would key `datasets`' cache on the folder's *name* and layout: a second folder
    called `all` (another merge, a regenerated run) would be served the first one's cached records.
    """
    shard_paths(folder)
    offered = {offer.name: offer for offer in dataset_configs(folder)}
    if config is not None and config not in offered:
        raise DatasetError(f"{folder} has no config {config!r}; it offers {list(offered)}")
    chosen = offered[config] if config is not None else next(offer for offer in offered.values() if offer.default)
    files = sorted(str(path.resolve()) for path in folder.glob(chosen.pattern))
    return {"path": "parquet", "data_files": {"train": files}}


def public_name(source: str | Path) -> str:
    """How output files name a dataset or model source: a Hub id as it is, a local folder by its name only.

    Outputs get published, so they never hold a path of this machine (DESIGN.md).
    """
    local = Path(source)
    return local.resolve().name if local.exists() else str(source)
