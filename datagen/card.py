"""The dataset card (`README.md`) of a dataset folder, generated from its manifest, statistics and layout."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from datagen.configs import ALL_CONFIG, DatasetConfig, dataset_configs
from datagen.features import PAIR_FEATURES
from datagen.layout import CARD_NAME, PREVIEW_NAME, REPORT_NAME
from datagen.manifest import Manifest, read_manifest
from datagen.stats import DIFFICULTY_BINS, DatasetStats, compute_stats
from datagen.store import Store, open_store

CITATION = """@misc{wang2025visionzeroscalablevlmselfimprovement,
  title         = {Vision-Zero: Scalable VLM Self-Improvement via Strategic Gamified Self-Play},
  author        = {Qinsi Wang and Bo Liu and Tianyi Zhou and Jing Shi and Yueqian Lin and Yiran Chen and
                   Hai Helen Li and Kun Wan and Wentian Zhao},
  year          = {2025},
  eprint        = {2509.25541},
  archivePrefix = {arXiv},
  primaryClass  = {cs.CV},
  url           = {https://arxiv.org/abs/2509.25541}
}"""


SYNTHETIC_LICENCE = "cc-by-4.0"
"""What a dataset whose generator states no licence is published under: its pairs are made by the tool alone."""
HUB_LICENCE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
"""The shape of a licence id the Hub's `license` field takes (`cc0-1.0`, `cc-by-nc-4.0`, `other`, ...)."""


@dataclass(frozen=True)
class DataLicence:
    """The licence a dataset card declares, and why, for pairs made from someone else's images.

    Attributes:
        id: the Hub licence id, e.g. `cc0-1.0`; `other` when the sources' licences are mixed or unknown.
        note: what the sources state (per image licence counts, the dataset's declared licence, or that
            none is known), shown in the card so that a publisher can check it.
    """

    id: str
    note: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def hub_licence_id(text: str) -> str | None:
    """`text` as a Hub licence id (`"CC0-1.0"` -> `"cc0-1.0"`), or None when it is a sentence, not an id."""
    candidate = text.strip().lower()
    return candidate if HUB_LICENCE_ID.match(candidate) else None


def combined_licence(licences: list[DataLicence]) -> DataLicence:
    """One licence for a folder merging several: theirs when all agree, else `other` with each one named."""
    ids = {licence.id for licence in licences}
    if len(ids) == 1 and not any(licence.note for licence in licences):
        return licences[0]
    notes = [f"{licence.id}" + (f" ({licence.note})" if licence.note else "") for licence in licences]
    if len(ids) == 1:
        return DataLicence(licences[0].id, "; ".join(dict.fromkeys(notes)))
    return DataLicence("other", "the merged folders differ: " + "; ".join(dict.fromkeys(notes)))


def manifest_licence(manifest: Manifest | None) -> DataLicence:
    """The licence a folder's manifest records (a merge's: its sources' combined), default `SYNTHETIC_LICENCE`."""
    if manifest is None:
        return DataLicence(SYNTHETIC_LICENCE)
    if manifest.sources:
        return combined_licence([_recorded(source.licence) for source in manifest.sources])
    return _recorded(manifest.licence)


def _recorded(value: dict[str, str] | None) -> DataLicence:
    return DataLicence(**value) if value else DataLicence(SYNTHETIC_LICENCE)


def size_category(records: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if records < limit:
            return label
    return "n>1M"


def config_records(config: DatasetConfig, stats: DatasetStats) -> int:
    return stats.domains[config.domain] if config.domain else stats.records


def dataset_info(store: Store, config: DatasetConfig, stats: DatasetStats) -> dict[str, Any]:
    """The Hub's `dataset_info` of one config: features, the train split's size, Parquet and data bytes."""
    paths = store.glob(config.pattern)
    data_bytes = 0
    for path in paths:
        metadata = store.parquet(path).metadata
        data_bytes += sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    return {
        "config_name": config.name,
        "features": PAIR_FEATURES._to_yaml_list(),
        "splits": [{"name": "train", "num_bytes": data_bytes, "num_examples": config_records(config, stats)}],
        "download_size": sum(store.size(path) for path in paths),
        "dataset_size": data_bytes,
    }


def yaml_header(store: Store, stats: DatasetStats, licence: DataLicence) -> str:
    """Front matter the Hub reads: licence, tasks, tags, one config per domain (plus `all`) and the features."""
    configs = dataset_configs(store)
    metadata = {
        "license": licence.id,
        "task_categories": ["image-text-to-text", "visual-question-answering"],
        "tags": ["vision-zero", "spot-the-difference", "synthetic", *sorted(stats.domains)],
        "size_categories": [size_category(stats.records)],
        "configs": [
            {
                "config_name": config.name,
                "data_files": [{"split": "train", "path": config.pattern}],
                **({"default": True} if config.default and len(configs) > 1 else {}),
            }
            for config in configs
        ],
        "dataset_info": [dataset_info(store, config, stats) for config in configs],
    }
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---"


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A Markdown table whose last column (the counts) is right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * (len(header) - 1) + "---:|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def contents(stats: DatasetStats) -> list[str]:
    """Pairs per domain and edit kind, difficulty histogram, image sizes and the run's rejects."""
    bins = [f"{i / DIFFICULTY_BINS:.1f}–{(i + 1) / DIFFICULTY_BINS:.1f}" for i in range(DIFFICULTY_BINS)]
    if len(stats.domains) > 1:
        edits = table(
            ("domain", "edit", "count"),
            [(domain, op, count) for (domain, op), count in sorted(stats.domain_edit_ops.items())],
        )
    else:
        edits = table(("edit", "count"), stats.edit_ops.most_common())
    return [
        "## Contents",
        table(("domain", "pairs"), sorted(stats.domains.items())),
        edits,
        table(("difficulty", "pairs"), list(zip(bins, stats.difficulty_histogram))),
        table(("image size", "pairs"), stats.image_sizes.most_common()),
        f"Generation retried {stats.retried} attempts that failed the quality gate and skipped {stats.skipped} "
        f"items (see `{REPORT_NAME}`).",
    ]


def licence_section(licence: DataLicence) -> list[str]:
    """What the `license` field rests on; for images from elsewhere, their sources' own terms."""
    if licence.id == SYNTHETIC_LICENCE and not licence.note:
        return ["## Licence", f"`{licence.id}`: the pairs are made by vision-zero from generated content."]
    return ["## Licence", f"`{licence.id}`" + (f": {licence.note}" if licence.note else "")]


def load_section(store: Store, name: str, repo_id: str | None) -> list[str]:
    source = repo_id or f"path/to/{name}"
    configs = dataset_configs(store)
    lines = ["from datasets import load_dataset", ""]
    if len(configs) > 1:
        lines.append(f'pairs = load_dataset("{source}", "{ALL_CONFIG}", split="train")  # every domain')
        lines += [f'{c.name} = load_dataset("{source}", "{c.name}", split="train")' for c in configs if c.domain]
    else:
        lines.append(f'pairs = load_dataset("{source}", split="train")')
    if repo_id is None:
        lines.append(f'# once published: load_dataset("your-org/{name}", split="train")')
    return [
        "## Load",
        "```python\n" + "\n".join(lines) + "\n```",
        "Training with vision-zero reads it with `datagen.loading.load_pairs(source, config=..., streaming=...)`; "
        "`vzero export DIR --format vision-zero OUT` writes the layout of the original Vision-Zero release.",
    ]


def provenance(manifest: Manifest) -> list[str]:
    """The exact command and tool version that made the folder (and, for a merge, each source)."""
    fingerprint = manifest.fingerprint
    sections = [
        "## How it was made",
        f"Generated by vision-zero {fingerprint['tool_version']} with:",
        f"```\n{manifest.command or '(command not recorded)'}\n```",
    ]
    for source in manifest.sources:
        sections.append(f"from `{source.name}`, made by:\n```\n{source.command or '(command not recorded)'}\n```")
    sections.append(f"```json\n{json.dumps(fingerprint, indent=2, sort_keys=True)}\n```")
    return sections


def card_text(
    dataset: Store | Path | str,
    stats: DatasetStats,
    manifest: Manifest | None,
    *,
    name: str | None = None,
    repo_id: str | None = None,
) -> str:
    """The whole card as Markdown; `name` (default: the folder's) titles it when no `repo_id` is known."""
    store = open_store(dataset)
    name = name or store.name
    licence = manifest_licence(manifest)
    sections = [
        yaml_header(store, stats, licence),
        f"# {repo_id or name}",
        "Spot-the-difference image pairs for training vision-language models with the Vision-Zero "
        '"Who is the spy?" self-play game. Each record holds a *civilian* image, a subtly different *spy* '
        "image, the exact mask and boxes of what differs, a machine-readable list of the edits and one "
        "sentence describing them.",
        f"![preview]({PREVIEW_NAME})",
        *contents(stats),
        *licence_section(licence),
        *load_section(store, name, repo_id),
    ]
    if manifest is not None:
        sections += provenance(manifest)
    sections += ["## Citation", f"```bibtex\n{CITATION}\n```"]
    return "\n\n".join(sections) + "\n"


def write_card(dataset: Store | Path | str, *, name: str | None = None, repo_id: str | None = None) -> str:
    """Write `README.md` of `dataset_dir` from its current shards and manifest.

    `name` titles the card when the folder is a staging copy; `repo_id` fills the title and load example
    once the dataset is published.
    """
    store = open_store(dataset)
    stats = compute_stats(store)
    store.write_text(CARD_NAME, card_text(store, stats, read_manifest(store), name=name, repo_id=repo_id))
    return store.describe(CARD_NAME)
