"""Which `datasets` configs a dataset folder offers, from its layout.

A run writes one domain to `data/train-*.parquet`: one `default` config. A merged folder keeps each
domain in `data/<domain>/train-*.parquet`: one config per domain, plus `all` (the default) over every domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datagen.layout import DATA_DIR

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


def merged_domains(dataset_dir: Path) -> list[str]:
    """The per-domain folders of a merged dataset folder (none for a run's folder)."""
    data = dataset_dir / DATA_DIR
    if not data.is_dir():
        return []
    return sorted(
        entry.name
        for entry in data.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and any(entry.glob("*.parquet"))
    )


def dataset_configs(dataset_dir: Path) -> list[DatasetConfig]:
    domains = merged_domains(dataset_dir)
    if not domains:
        return [DatasetConfig(DEFAULT_CONFIG, f"{DATA_DIR}/train-*.parquet", default=True)]
    return [DatasetConfig(ALL_CONFIG, f"{DATA_DIR}/*/train-*.parquet", default=True)] + [
        DatasetConfig(domain, f"{domain_folder(domain)}/train-*.parquet", default=False, domain=domain)
        for domain in domains
    ]
