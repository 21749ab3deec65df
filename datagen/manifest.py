"""`manifest.json` and `report.jsonl` as typed records: what a run was asked to make and what it has finished.

The manifest is the single source of truth for resume. Several processes (a job array writing into one
folder) may update it, so every read-modify-write holds the store's manifest lock (`Store.manifest_lock`), and
files are replaced atomically so that a crash never leaves a half-written manifest. On disk it stays plain JSON
(the same keys as ever); in memory every module reads it through these dataclasses, never by string keys.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from datagen.layout import MANIFEST_NAME, REPORT_NAME
from datagen.store import Store, open_store

FORMAT_VERSION = 1
MERGED_KIND = "merged"


@dataclass
class ReportEvent:
    """One line of `report.jsonl`: an item retried or skipped, or an input file skipped when the source opened."""

    event: str
    """`retried`, `skipped` (an item's last attempt failed) or `input_skipped`."""
    reason: str
    """`ExceptionType: message` (or why an input file was refused)."""
    index: int | None = None
    """The item's index (item events)."""
    attempt: int | None = None
    """0-based attempt, each with its own derived seed (item events)."""
    seed: int | None = None
    """The seed of that attempt (item events)."""
    source: str | None = None
    """The input file, relative to its source root (input events)."""
    unusable: bool = False
    """The input the index maps to cannot become a pair whatever the seed: skipped at once, not a sign of a bug."""
    where: str | None = None
    """`package/module.py:LINE in function`: the frame of the domain's code the error came from."""
    traceback: str | None = None
    """The whole traceback, with paths relative to their import root (`--debug` or `VZERO_DEBUG=1` only)."""

    def describe(self) -> str:
        """The reason, with the frame it came from and the traceback when they are known: for messages."""
        text = self.reason + (f" (at {self.where})" if self.where else "")
        return text + (f"\n{self.traceback.rstrip()}" if self.traceback else "")

    def to_json(self) -> dict[str, Any]:
        """The JSON line, without the fields that do not apply (None, or `unusable` when false)."""
        return {key: value for key, value in asdict(self).items() if value is not None and value is not False}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ReportEvent:
        known = {item.name for item in fields(cls)}
        return cls(**{key: item for key, item in value.items() if key in known})


@dataclass
class ShardEntry:
    """One finished shard: where it is, which indices it covers, its checksum and its items' report events."""

    path: str
    """Relative POSIX path, e.g. `data/train-00000-of-00002.parquet`."""
    start: int
    stop: int
    """It holds the items of indices `[start, stop)` that were not skipped."""
    records: int
    sha256: str
    bytes: int
    report: list[ReportEvent] = field(default_factory=list)
    source: int | None = None
    """In a merged folder: the position of the source folder it was copied from."""

    def to_json(self) -> dict[str, Any]:
        value = {**asdict(self), "report": [event.to_json() for event in self.report]}
        if self.source is None:
            del value["source"]
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ShardEntry:
        return cls(**{**value, "report": [ReportEvent.from_json(event) for event in value.get("report", [])]})


@dataclass(frozen=True)
class Counts:
    """Derived from the shards on every write, so it can never disagree with them."""

    planned: int
    written: int
    skipped: int
    retried: int
    shards_done: int
    shards_total: int


@dataclass
class SourceSummary:
    """A merged folder's record of one source folder."""

    name: str
    command: str
    counts: Counts
    licence: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SourceSummary:
        return cls(value["name"], value["command"], Counts(**value["counts"]), value.get("licence"))


@dataclass
class Manifest:
    """`manifest.json` of a run's folder or of a merged one (`kind == "merged"`, with `sources`)."""

    fingerprint: dict[str, Any]
    """Everything that decides the shards' bytes (see `fingerprint`); resume requires it to be equal."""
    command: str
    """The command that made the folder, without absolute paths."""
    num_shards: int
    shards: dict[str, ShardEntry] = field(default_factory=dict)
    """Finished shards by file name (a merged folder: by relative path)."""
    input_report: list[ReportEvent] = field(default_factory=list)
    licence: dict[str, str] | None = None
    """`datagen.card.DataLicence` as JSON, for pairs made from images with their own terms."""
    kind: str | None = None
    sources: list[SourceSummary] = field(default_factory=list)
    format: int = FORMAT_VERSION

    @property
    def planned(self) -> int:
        """Items the run (or, merged, its sources together) set out to make."""
        return int(self.fingerprint["num"])

    @property
    def complete(self) -> bool:
        return len(self.shards) == self.num_shards

    @property
    def counts(self) -> Counts:
        events = [event for shard in self.shards.values() for event in shard.report]
        return Counts(
            planned=self.planned,
            written=sum(shard.records for shard in self.shards.values()),
            skipped=sum(event.event == "skipped" for event in events),
            retried=sum(event.event == "retried" for event in events),
            shards_done=len(self.shards),
            shards_total=self.num_shards,
        )

    def report_lines(self) -> list[ReportEvent]:
        """The run's report: input problems first, then each finished shard's item events in shard order."""
        lines = list(self.input_report)
        for name in sorted(self.shards):
            lines.extend(self.shards[name].report)
        return lines

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "format": self.format,
            "fingerprint": self.fingerprint,
            "command": self.command,
            "num_shards": self.num_shards,
            "shards": {name: shard.to_json() for name, shard in self.shards.items()},
            "input_report": [event.to_json() for event in self.input_report],
            "counts": asdict(self.counts),
            "complete": self.complete,
        }
        if self.licence is not None:
            value["licence"] = self.licence
        if self.kind is not None:
            value["kind"] = self.kind
            value["sources"] = [source.to_json() for source in self.sources]
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Manifest:
        return cls(
            fingerprint=value["fingerprint"],
            command=value.get("command", ""),
            num_shards=value["num_shards"],
            shards={name: ShardEntry.from_json(entry) for name, entry in value["shards"].items()},
            input_report=[ReportEvent.from_json(event) for event in value.get("input_report", [])],
            licence=value.get("licence"),
            kind=value.get("kind"),
            sources=[SourceSummary.from_json(source) for source in value.get("sources", [])],
            format=value.get("format", FORMAT_VERSION),
        )


def fingerprint(
    *, domain: str, config: dict[str, Any], inputs: str, num: int, seed: int, shard_size: int, version: str
) -> dict[str, Any]:
    """Everything that decides the bytes of a run's shards; resume requires it to be equal."""
    return {
        "domain": domain,
        "config": json.loads(json.dumps(config)),
        "inputs": inputs,
        "num": num,
        "seed": seed,
        "shard_size": shard_size,
        "tool_version": version,
    }


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Flattened keys whose values differ between two fingerprints, e.g. `{"config.width": (640, 320)}`."""
    found: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new)):
        left, right = old.get(key), new.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            found.update(differences(left, right, f"{prefix}{key}."))
        elif left != right:
            found[f"{prefix}{key}"] = (left, right)
    return found


def read_manifest(out: Store | Path | str) -> Manifest | None:
    """The folder's manifest, or None when it has none."""
    store = open_store(out)
    try:
        text = store.read_text(MANIFEST_NAME)
    except FileNotFoundError:
        return None
    return Manifest.from_json(json.loads(text))


def write_manifest(out: Store | Path | str, manifest: Manifest) -> None:
    """Replace `manifest.json` (its counts recomputed) and its derived `report.jsonl`, each atomically."""
    store = open_store(out)
    store.write_text(MANIFEST_NAME, json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n")
    lines = manifest.report_lines()
    store.write_text(REPORT_NAME, "".join(json.dumps(line.to_json(), sort_keys=True) + "\n" for line in lines))
