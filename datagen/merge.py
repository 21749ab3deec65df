"""`vzero merge`: several dataset folders into one, each domain's shards under `data/<domain>/`.

Shards are copied byte for byte (their checksums carry over), renumbered per domain. The merged folder
gets a manifest of kind `merged` that lists every shard with its run report and every source's fingerprint
and command, so that `vzero info`, the card and publish validation treat it like a run's folder, while the
runner refuses to resume into it (its fingerprint matches no run).
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq

import datagen
from datagen import manifest as manifests
from datagen.card import manifest_licence, write_card
from datagen.configs import ALL_CONFIG, DEFAULT_CONFIG, domain_folder
from datagen.errors import ConfigError, DatasetError
from datagen.files import staged_folder
from datagen.layout import shard_name
from datagen.manifest import MERGED_KIND, Manifest, ShardEntry, SourceSummary
from datagen.preview import write_preview
from datagen.validate import validate_dataset

DOMAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_DUPLICATES_SHOWN = 5


@dataclass(frozen=True)
class SourceShard:
    """One shard of a source folder, with the single domain its rows belong to."""

    source: int
    domain: str
    path: Path
    entry: ShardEntry


def shard_domain(path: Path) -> str:
    """The one domain of a shard's rows; a shard mixing domains cannot be filed under one `data/<domain>/`."""
    domains = set(pq.read_table(path, columns=["domain"]).column("domain").to_pylist())
    if len(domains) != 1:
        raise DatasetError(f"{path} mixes the domains {sorted(domains)}; merge needs one domain per shard")
    domain = domains.pop()
    if not DOMAIN_NAME.match(domain) or domain in (ALL_CONFIG, DEFAULT_CONFIG):
        raise DatasetError(
            f"{path} has domain {domain!r}, which cannot name a folder and a config "
            f"(use letters, digits, '_', '-', '.'; not {ALL_CONFIG!r} or {DEFAULT_CONFIG!r})"
        )
    return domain


def read_sources(sources: list[Path]) -> tuple[list[Manifest], list[SourceShard]]:
    """Validate each source folder and list its shards in order."""
    manifests_read, shards = [], []
    for number, source in enumerate(sources):
        validate_dataset(source)
        manifest = manifests.read_manifest(source)
        manifests_read.append(manifest)
        for entry in sorted(manifest.shards.values(), key=lambda entry: entry.path):
            path = source / entry.path
            shards.append(SourceShard(number, shard_domain(path), path, entry))
    return manifests_read, shards


def check_unique_ids(sources: list[Path], shards: list[SourceShard]) -> None:
    """Refuse duplicate ids, naming them and where they come from (e.g. two runs with the same seed)."""
    first_seen: dict[str, int] = {}
    duplicates: list[tuple[str, int, int]] = []
    for shard in shards:
        for record_id in pq.read_table(shard.path, columns=["id"]).column("id").to_pylist():
            if record_id in first_seen:
                duplicates.append((record_id, first_seen[record_id], shard.source))
            else:
                first_seen[record_id] = shard.source
    if duplicates:
        shown = ", ".join(f"{rid} ({sources[a]} and {sources[b]})" for rid, a, b in duplicates[:MAX_DUPLICATES_SHOWN])
        raise DatasetError(
            f"{len(duplicates)} pair id(s) occur in more than one source: {shown}. Runs of one domain with the "
            "same --seed make the same ids; merge runs made with different seeds"
        )


def plan_layout(shards: list[SourceShard]) -> dict[str, SourceShard]:
    """`data/<domain>/train-k-of-n.parquet` -> source shard, numbered per domain in source order."""
    by_domain: dict[str, list[SourceShard]] = defaultdict(list)
    for shard in shards:
        by_domain[shard.domain].append(shard)
    layout = {}
    for domain, members in sorted(by_domain.items()):
        for number, shard in enumerate(members):
            layout[f"{domain_folder(domain)}/{shard_name(number, len(members))}"] = shard
    return layout


def merged_manifest(
    sources: list[Path], source_manifests: list[Manifest], layout: dict[str, SourceShard], command: str
) -> Manifest:
    """A manifest of kind `merged`: the shards with their reports, the sources' fingerprints and commands."""
    return Manifest(
        kind=MERGED_KIND,
        fingerprint={
            "kind": MERGED_KIND,
            "num": sum(manifest.planned for manifest in source_manifests),
            "sources": [manifest.fingerprint for manifest in source_manifests],
            "tool_version": datagen.__version__,
        },
        command=command,
        sources=[
            SourceSummary(
                source.resolve().name, manifest.command, manifest.counts, manifest_licence(manifest).to_json()
            )
            for source, manifest in zip(sources, source_manifests)
        ],
        num_shards=len(layout),
        shards={
            relative: replace(shard.entry, path=relative, source=shard.source) for relative, shard in layout.items()
        },
        input_report=[line for manifest in source_manifests for line in manifest.input_report],
    )


def check_destination(sources: list[Path], out: Path) -> None:
    if len(sources) < 2:
        raise ConfigError("merge needs at least two dataset folders")
    resolved = [source.resolve() for source in sources]
    if len(set(resolved)) != len(resolved):
        raise ConfigError("the same dataset folder is given twice")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"output {out} already exists and is not an empty folder; use a new --out")
    if out.resolve() in resolved:
        raise ConfigError(f"--out {out} is one of the sources")


def merge(sources: list[Path], out: Path, *, command: str = "") -> Path:
    """Merge the dataset folders `sources` into the new folder `out` and return it.

    The folder is assembled under a temporary sibling name and renamed when complete, so an interrupted
    merge leaves no half-merged dataset.

    Raises:
        ConfigError: fewer than two sources, a source given twice, or `out` exists and is not empty.
        DatasetError: a source is not an intact dataset, or ids repeat across sources.
    """
    check_destination(sources, out)
    source_manifests, shards = read_sources(sources)
    check_unique_ids(sources, shards)
    layout = plan_layout(shards)
    with staged_folder(out) as staging:
        for relative, shard in layout.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shard.path, staging / relative)
        manifests.write_manifest(staging, merged_manifest(sources, source_manifests, layout, command))
        write_preview(staging)
        write_card(staging, name=out.resolve().name)
    return out
