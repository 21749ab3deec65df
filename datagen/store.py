"""Where a dataset's files live: a local (or shared) folder, or any URL `fsspec` writes (`s3://`, `gs://`, `hf://`).

Every reader and writer of a dataset's files goes through a `Store`, so that one runner, card, preview and resume
work on both. Two guarantees hold on every store:

- **Atomic commits.** A file appears under its final name only whole: on a local folder it is written to a hidden
  temporary sibling, fsynced and renamed (`datagen.files`); on a URL it is uploaded to a hidden temporary name and
  moved (`fs.mv`: a rename, or the store's server-side copy), or, on the Hub, uploaded as one commit. A crash
  leaves at most a `.NAME.*.tmp` file, which a later run removes.
- **One writer.** `run_lock` refuses a second run into the same output while one is going. A local folder uses
  `flock` (released by the kernel when a process dies, even by `kill -9`); a URL uses a lease file with a heartbeat,
  since object stores have no locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.parquet as pq

from datagen.errors import ConfigError
from datagen.files import atomic_path, atomic_write_bytes, sha256_file
from datagen.layout import LOCK_NAME

RUN_LOCK_NAME = ".run.lock"
"""A local folder's run lock: held exclusively by a whole run, shared by the jobs of a `--shard i/n` array."""
LEASE_NAME = ".vzero-run.json"
"""A URL's run lease: who writes there now, and when it last said so."""
LEASE_HEARTBEAT_SECONDS = 60.0
"""How often a run renews its lease. Each renewal is a write (a commit on `hf://`), so not too often."""
LEASE_EXPIRY_SECONDS = 300.0
"""A lease not renewed for this long belongs to a dead run (another machine's: a dead process here is seen at once)."""
TEMPORARY_SUFFIX = ".tmp"
COMMIT_PROTOCOLS = {"hf"}
"""Stores where one upload is already one atomic commit (the Hub): a temporary name and a move would add two."""


def is_url(location: str | Path) -> bool:
    """Whether `location` names an fsspec URL (`s3://...`, `file://...`) rather than a local path."""
    return isinstance(location, str) and "://" in location


def is_temporary(name: str) -> bool:
    """A name the stores write before committing: `.NAME.<writer>.tmp`."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


class Store(ABC):
    """A dataset's files, addressed by relative POSIX paths (`data/train-00000-of-00002.parquet`)."""

    location: str
    """The output as the user gave it, for messages (a relative path stays relative)."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The folder's own name (the last part of its path), which titles its card."""

    def describe(self, relative: str = "") -> str:
        """`location/relative`, for messages."""
        return f"{self.location.rstrip('/')}/{relative}" if relative else self.location

    @abstractmethod
    def exists(self, relative: str) -> bool: ...

    @abstractmethod
    def is_folder(self) -> bool:
        """Whether the store's root exists as a folder (a URL prefix with files counts)."""

    @abstractmethod
    def read_bytes(self, relative: str) -> bytes: ...

    @abstractmethod
    def glob(self, pattern: str) -> list[str]:
        """Relative paths of the files matching `pattern` (`**` spans folders), sorted."""

    @abstractmethod
    def files(self) -> list[str]:
        """Relative paths of every file under the root, hidden ones included, sorted."""

    @abstractmethod
    def size(self, relative: str) -> int: ...

    @abstractmethod
    def parquet(self, relative: str) -> pq.ParquetFile:
        """The Parquet file at `relative`, read lazily (a URL's row groups by range requests)."""

    @abstractmethod
    def committing(self, relative: str) -> contextlib.AbstractContextManager[Path]:
        """Yield a local path to write `relative`'s new content to; on success it is committed atomically.

        On any exception nothing is committed, the temporary file is removed and the exception propagates.
        """

    @abstractmethod
    def is_intact(self, relative: str, sha256: str, size: int) -> bool:
        """Whether `relative` is the file a manifest recorded with `sha256` and `size`."""

    @abstractmethod
    def remove(self, relative: str) -> None: ...

    @abstractmethod
    def manifest_lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive access for a read-modify-write of the manifest."""

    @abstractmethod
    def run_lock(self, job: tuple[int, int] | None) -> contextlib.AbstractContextManager[None]:
        """Held for a whole run; raises `ConfigError` when another run writes here (see the module docstring)."""

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Replace `relative` with `data`, atomically."""
        with self.committing(relative) as temporary:
            temporary.write_bytes(data)

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode("utf-8"))

    def read_text(self, relative: str) -> str:
        return self.read_bytes(relative).decode("utf-8")

    def temporaries(self) -> list[str]:
        """Leftovers of writes that never committed (a crash, a full disk)."""
        return [path for path in self.files() if is_temporary(PurePosixPath(path).name)]

    def remove_temporaries(self) -> list[str]:
        """Delete every leftover temporary; call only while no other writer can be mid-commit."""
        leftovers = self.temporaries()
        for path in leftovers:
            self.remove(path)
        return leftovers


class LocalStore(Store):
    """A folder on this machine (or a shared filesystem every node mounts at the same path)."""

    def __init__(self, root: Path | str, location: str | None = None) -> None:
        self.root = Path(root).absolute()
        self.location = location if location is not None else str(root)

    def __reduce__(self) -> tuple[Any, ...]:
        return (LocalStore, (self.root, self.location))

    @property
    def name(self) -> str:
        return self.root.resolve().name

    def path(self, relative: str) -> Path:
        return self.root / relative if relative else self.root

    def exists(self, relative: str) -> bool:
        return self.path(relative).exists()

    def is_folder(self) -> bool:
        return self.root.is_dir()

    def read_bytes(self, relative: str) -> bytes:
        return self.path(relative).read_bytes()

    def glob(self, pattern: str) -> list[str]:
        return sorted(path.relative_to(self.root).as_posix() for path in self.root.glob(pattern) if path.is_file())

    def files(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(path.relative_to(self.root).as_posix() for path in self.root.rglob("*") if path.is_file())

    def size(self, relative: str) -> int:
        return self.path(relative).stat().st_size

    def parquet(self, relative: str) -> pq.ParquetFile:
        return pq.ParquetFile(self.path(relative))

    @contextlib.contextmanager
    def committing(self, relative: str) -> Iterator[Path]:
        final = self.path(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(final) as temporary:
            yield temporary

    def write_bytes(self, relative: str, data: bytes) -> None:
        final = self.path(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(final, data)

    def is_intact(self, relative: str, sha256: str, size: int) -> bool:
        """Local files are re-hashed: reading them is cheap, and a folder can be edited by hand."""
        path = self.path(relative)
        return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256

    def remove(self, relative: str) -> None:
        self.path(relative).unlink(missing_ok=True)

    @contextlib.contextmanager
    def manifest_lock(self) -> Iterator[None]:
        with _flock(self.path(LOCK_NAME), fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def run_lock(self, job: tuple[int, int] | None) -> Iterator[None]:
        """A whole run holds `.run.lock` exclusively; each job of an array holds it shared plus its own job lock."""
        busy = f"another vzero run is writing to {self.location} now; wait for it to end, or write to another folder"
        if job is None:
            with _flock(self.path(RUN_LOCK_NAME), fcntl.LOCK_EX | fcntl.LOCK_NB, busy):
                yield
            return
        index, count = job
        with (
            _flock(self.path(RUN_LOCK_NAME), fcntl.LOCK_SH | fcntl.LOCK_NB, busy),
            _flock(
                self.path(f".run-{index}-of-{count}.lock"),
                fcntl.LOCK_EX | fcntl.LOCK_NB,
                f"job {index}/{count} is already running into {self.location}; each job of an array runs once",
            ),
        ):
            yield


@contextlib.contextmanager
def _flock(path: Path, operation: int, busy_message: str = "") -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, operation)
        except BlockingIOError:
            raise ConfigError(busy_message) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class FsspecStore(Store):
    """A URL any installed fsspec filesystem serves: `s3://bucket/prefix`, `gs://...`, `hf://datasets/ORG/NAME`...

    Files are written locally first, uploaded to a hidden temporary name and moved into place, so that a reader
    (or a resume) never sees a partial object; on the Hub, where an upload is itself one atomic commit, they are
    uploaded to their name directly. Shards are checked on resume by size, not by re-downloading them
    to hash: a committed object is whole by construction, and hashing terabytes over the network would make
    resuming cost as much as the run.
    """

    def __init__(self, url: str) -> None:
        import fsspec

        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as error:
            raise ConfigError(f"cannot open output {url}: {error}") from error
        self.url = url
        self.location = url
        self.root = root.rstrip("/")
        self.writer = uuid.uuid4().hex[:12]
        protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) else set(self.fs.protocol)
        self.uploads_are_commits = bool(protocols & COMMIT_PROTOCOLS)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FsspecStore, (self.url,))

    @property
    def name(self) -> str:
        return PurePosixPath(self.root).name

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative}" if relative else self.root

    def relative(self, path: str) -> str:
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    def exists(self, relative: str) -> bool:
        return self.fs.exists(self.path(relative))

    def is_folder(self) -> bool:
        return self.fs.isdir(self.root)

    def read_bytes(self, relative: str) -> bytes:
        return self.fs.cat_file(self.path(relative))

    def glob(self, pattern: str) -> list[str]:
        found = self.fs.glob(self.path(pattern), detail=True)  # the types come with the listing: no request per file
        return sorted(self.relative(path) for path, info in found.items() if info.get("type") == "file")

    def files(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        return sorted(self.relative(path) for path in self.fs.find(self.root, withdirs=False))

    def size(self, relative: str) -> int:
        return int(self.fs.size(self.path(relative)))

    def parquet(self, relative: str) -> pq.ParquetFile:
        return pq.ParquetFile(self.fs.open(self.path(relative), "rb"))

    @contextlib.contextmanager
    def committing(self, relative: str) -> Iterator[Path]:
        final = PurePosixPath(self.path(relative))
        temporary = str(final.with_name(f".{final.name}.{self.writer}{TEMPORARY_SUFFIX}"))
        with tempfile.TemporaryDirectory(prefix="vzero-") as scratch:
            local = Path(scratch) / final.name
            yield local
            if self.uploads_are_commits:
                self.fs.put_file(str(local), str(final))
                return
            try:
                self.fs.makedirs(str(final.parent), exist_ok=True)
                self.fs.put_file(str(local), temporary)
                self.fs.mv(temporary, str(final))
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(temporary)
                raise

    def is_intact(self, relative: str, sha256: str, size: int) -> bool:
        path = self.path(relative)
        return self.fs.isfile(path) and int(self.fs.size(path)) == size

    def remove(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(relative))

    @contextlib.contextmanager
    def manifest_lock(self) -> Iterator[None]:
        """Nothing to take: the run lease makes this run the only writer, and it updates the manifest from one
        process (the driver), one shard at a time."""
        yield

    @contextlib.contextmanager
    def run_lock(self, job: tuple[int, int] | None) -> Iterator[None]:
        if job is not None:
            raise ConfigError(
                f"--shard i/n job arrays need a local or shared folder (their jobs update one manifest under a file "
                f"lock, which {self.location} cannot give); to spread one run over machines use --backend ray"
            )
        lease = Lease(self)
        lease.acquire()
        try:
            yield
        finally:
            lease.release()


class Lease:
    """Who writes to a URL now: `{owner, host, pid, renewed}` in `.vzero-run.json`, renewed by a daemon thread."""

    def __init__(self, store: FsspecStore) -> None:
        self.store = store
        self.owner = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid()}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew_until_stopped, daemon=True, name="vzero-lease")

    def acquire(self) -> None:
        current = self.read()
        if current is not None and self.is_live(current):
            age = time.time() - float(current.get("renewed", 0))
            raise ConfigError(
                f"another vzero run (host {current.get('host')}, pid {current.get('pid')}, last seen {age:.0f} s ago) "
                f"is writing to {self.store.location}; wait for it to end. If it died on another machine, its lease "
                f"expires {LEASE_EXPIRY_SECONDS:.0f} s after it was last seen"
            )
        try:
            self.write()
        except OSError as error:  # the first write to the output: a missing bucket or repository, no permission
            raise ConfigError(f"cannot write to output {self.store.location}: {error}") from error
        time.sleep(0.2)
        winner = self.read()
        if winner is None or winner.get("owner") != self.owner["owner"]:
            raise ConfigError(f"another vzero run started writing to {self.store.location} at the same moment")
        self.thread.start()

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.store.read_text(LEASE_NAME))
        except (FileNotFoundError, ValueError):
            return None

    def write(self) -> None:
        self.store.write_text(LEASE_NAME, json.dumps({**self.owner, "renewed": time.time()}))

    @staticmethod
    def is_live(lease: dict[str, Any]) -> bool:
        if lease.get("host") == socket.gethostname() and not _process_alive(int(lease.get("pid", -1))):
            return False
        return time.time() - float(lease.get("renewed", 0)) < LEASE_EXPIRY_SECONDS

    def _renew_until_stopped(self) -> None:
        while not self.stopped.wait(LEASE_HEARTBEAT_SECONDS):
            with contextlib.suppress(Exception):  # a missed renewal only shortens the lease; the run goes on
                self.write()

    def release(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()
        current = self.read()
        if current is not None and current.get("owner") == self.owner["owner"]:
            self.store.remove(LEASE_NAME)


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def open_store(location: Store | Path | str) -> Store:
    """The store of an output: a `Store` as is, a URL as an `FsspecStore`, anything else as a local folder."""
    if isinstance(location, Store):
        return location
    if is_url(location):
        return FsspecStore(str(location))
    return LocalStore(Path(location), str(location))
