"""Which `datasets` configs a dataset folder offers, from its layout.

A run writes one domain to `data/train-*.parquet`: one `default` config. A merged folder keeps each
domain in `data/<domain>/train-*.parquet`: one config per domain, plus `all` (the default) over every domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from datagen.layout import DATA_DIR
from datagen.store import Store, open_store

ALL_CONFIG = "all"
DEFAULT_CONFIG = "default"


@dataclass(frozen=True)
class DatasetConfig:
    """One config of the card's YAML: its name, the glob of its Parquet files, and whether it loads by default."""

    name: str
    pattern: str
    default: bool
    domain: str | None = None


def domain_folder(domain: str) -> str:
    """Where a merged folder keeps the shards of `domain`, relative to the folder."""
    return f"{DATA_DIR}/{domain}"


def merged_domains(dataset: Store | Path | str) -> list[str]:
    """The per-domain folders of a merged dataset folder (none for a run's folder)."""
    shards = open_store(dataset).glob(f"{DATA_DIR}/*/*.parquet")
    return sorted({name for name in (PurePosixPath(path).parent.name for path in shards) if not name.startswith(".")})


def dataset_configs(dataset: Store | Path | str) -> list[DatasetConfig]:
    domains = merged_domains(dataset)
    if not domains:
        return [DatasetConfig(DEFAULT_CONFIG, f"{DATA_DIR}/train-*.parquet", default=True)]
    return [DatasetConfig(ALL_CONFIG, f"{DATA_DIR}/*/train-*.parquet", default=True)] + [
        DatasetConfig(domain, f"{domain_folder(domain)}/train-*.parquet", default=False, domain=domain)
        for domain in domains
    ]
