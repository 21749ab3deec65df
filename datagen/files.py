"""The one way files are written and hashed: atomic replacement (temporary sibling, fsync, rename) and digests.

A crash, a full disk or a second process must never leave a plausible half-written file under a final name: a
truncated shard or manifest would be trusted on resume. Every writer in `datagen` (and the trainer's checkpoints)
goes through here, so the guarantee holds in one place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BLOCK = 1 << 20
"""Bytes read at a time when hashing: large files (shards, weights) never sit in memory whole."""


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside `path`, unique to this process, that the final name never collides with."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write `path`'s content to; on success it is fsynced and renamed over `path`.

    On any exception the temporary file is removed and the exception propagates: `path` keeps its old content
    (or stays absent).
    """
    temporary = temporary_sibling(path)
    try:
        yield temporary
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (see `atomic_path`)."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically (see `atomic_path`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def staging_folder(final: Path) -> Path:
    """Where a folder that must appear whole is assembled: a hidden sibling of `final`, the same in every process.

    The name does not depend on the process, so that several processes of one job (a sharded checkpoint) can
    fill the same staging folder.
    """
    return final.with_name(f".{final.name}.partial")


def replace_folder(staging: Path, final: Path) -> None:
    """Move the finished `staging` folder to `final`, replacing a folder that was there."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield an empty staging folder for `final`; on success it becomes `final`, on failure it is removed."""
    staging = staging_folder(final)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        replace_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def file_digest(path: Path, algorithm: str = "sha256", *, header: bytes = b"") -> str:
    """The hex digest of `header` followed by the bytes of `path`, read block by block."""
    digest = hashlib.new(algorithm)
    digest.update(header)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes: what manifests record per shard and what LFS reports."""
    return file_digest(path)


def git_blob_id(path: Path) -> str:
    """The git object id of a file's bytes, which the Hub reports for files not stored in LFS."""
    return file_digest(path, "sha1", header=f"blob {path.stat().st_size}\0".encode())


def files_digest(root: Path) -> str:
    """sha256 over the relative path and bytes of every file under `root`, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()
