"""`manifest.json` and `report.jsonl`: what a run was asked to make and what it has finished.

The manifest is the single source of truth for resume. Several processes (a job array writing into one
folder) may update it, so every read-modify-write holds an exclusive lock, and files are replaced
atomically so that a crash never leaves a half-written manifest.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.jsonl"
LOCK_NAME = ".manifest.lock"
FORMAT_VERSION = 1


def fingerprint(
    *, domain: str, config: dict[str, Any], inputs: str, num: int, seed: int, shard_size: int, version: str
) -> dict:
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_digest(root: Path) -> str:
    """sha256 over the relative path and bytes of every file under `root`, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary sibling, fsync, then rename over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Exclusive lock over the manifest of `out_dir`, across processes."""
    with (out_dir / LOCK_NAME).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST_NAME
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def report_lines(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's report: input problems first, then each finished shard's item events in shard order."""
    lines = list(manifest.get("input_report", []))
    for name in sorted(manifest["shards"]):
        lines.extend(manifest["shards"][name]["report"])
    return lines


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Recompute the counts, then replace `manifest.json` and its derived `report.jsonl`."""
    shards = manifest["shards"].values()
    events = [line for shard in shards for line in shard["report"]]
    manifest["counts"] = {
        "planned": manifest["fingerprint"]["num"],
        "written": sum(shard["records"] for shard in shards),
        "skipped": sum(1 for line in events if line["event"] == "skipped"),
        "retried": sum(1 for line in events if line["event"] == "retried"),
        "shards_done": len(manifest["shards"]),
        "shards_total": manifest["num_shards"],
    }
    manifest["complete"] = len(manifest["shards"]) == manifest["num_shards"]
    atomic_write_text(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    report = "".join(json.dumps(line, sort_keys=True) + "\n" for line in report_lines(manifest))
    atomic_write_text(out_dir / REPORT_NAME, report)
