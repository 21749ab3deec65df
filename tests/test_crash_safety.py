"""Crash safety of a whole `vzero` run, as a user meets it: kill -9 at random moments, a disk that fills up,
Ctrl-C, and a second run started into the same folder.

Each case ends the same way: re-running the same command finishes the dataset with exactly the files (every
byte of shards, manifest, report, card and preview) of a run that was never interrupted, and no temporary file
is left in the output.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from chart_edit.domain import DOMAIN, ChartConfig
from datagen.errors import GenerationError
from datagen.manifest import read_manifest
from datagen.runner import RunOptions, run
from datagen.store import FsspecStore
from tests.conftest import SMALL

VZERO = str(Path(sys.executable).parent / "vzero")
ROOT = Path(__file__).parents[1]
TRIALS = 10


DOMAIN_OPTIONS = {
    "chart": ["--size", "256x192"],
    "clevr": ["--size", "96x64", "--samples", "4"],
    "realworld": ["--max-side", "256"],
}
"""Each domain at a size that keeps a run to seconds."""


def command(
    out: Path, *, num: int = 16, workers: int = 2, shard_size: int = 4, domain: str = "chart", backend: str = "local"
) -> list[str]:
    return [VZERO, domain, "--out", str(out), "--num", str(num), "--seed", "11", "--workers", str(workers),
            "--shard-size", str(shard_size), "--backend", backend, *DOMAIN_OPTIONS[domain]]  # fmt: skip


def as_from_a_terminal() -> None:
    """Ctrl-C at its default in the child, as under a terminal: an ignored SIGINT is inherited across exec, and a
    shell without job control starts background commands (`make test &`, some CI runners) with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out: Path, **kwargs) -> subprocess.Popen:
    """The CLI in its own process group, as a terminal runs it (so that a signal can reach the whole group)."""
    return subprocess.Popen(
        command(out, **kwargs),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=as_from_a_terminal,
    )


def finish(out: Path, **kwargs) -> None:
    done = subprocess.run(command(out, **kwargs), cwd=ROOT, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()


def published_files(folder: Path) -> dict[str, bytes]:
    """Every file a user would publish (hidden lock files left out), by relative path."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    }


def temporaries(folder: Path) -> list[str]:
    return [path.name for path in folder.rglob("*") if path.name.endswith(".tmp")]


def shards_listed(folder: Path) -> int:
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError):
        return 0
    return 0 if manifest is None else len(manifest.shards)


def wait_for_shards(folder: Path, process: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + 120
    while shards_listed(folder) < count and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict[str, bytes], float]:
    """The files of an uninterrupted run, and how long it took."""
    out = tmp_path_factory.mktemp("reference") / "ds"
    started = time.monotonic()
    finish(out)
    return published_files(out), time.monotonic() - started


def kill_at_random_moments(tmp_path: Path, files: dict[str, bytes], seconds: float, trials: int, **run) -> None:
    """Start the run, `kill -9` its whole process group at a random moment, re-run it; `trials` times."""
    moments = random.Random(20261130).sample([seconds * step / 40 for step in range(2, 44)], trials)
    interrupted_mid_run = 0
    for trial, moment in enumerate(sorted(moments)):
        out = tmp_path / f"trial-{trial}" / "ds"
        process = start(out, **run)
        time.sleep(moment)
        if process.poll() is None:
            interrupted_mid_run += 1
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        finish(out, **run)
        assert published_files(out) == files, f"trial {trial}: killed after {moment:.2f} s"
        assert temporaries(out) == [], f"trial {trial}: killed after {moment:.2f} s"
    assert interrupted_mid_run >= trials // 2, "most kills must land while the run is going"


def test_kill_9_of_the_whole_cli_at_random_moments_then_rerunning_gives_the_uninterrupted_dataset(tmp_path, reference):
    files, seconds = reference
    kill_at_random_moments(tmp_path, files, seconds, TRIALS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("domain", "backend"), [("chart", "ray"), ("clevr", "local"), ("clevr", "ray"), ("realworld", "local")]
)
def test_kill_9_trials_on_every_backend_and_domain(tmp_path, domain, backend):
    """The same, 4 trials each, on the Ray backend (the CLI's own Ray instance dies with it) and the other domains."""
    run = {"domain": domain, "backend": backend, "num": 8, "shard_size": 2}
    started = time.monotonic()
    finish(tmp_path / "uninterrupted" / "ds", **run)
    seconds = time.monotonic() - started
    files = published_files(tmp_path / "uninterrupted" / "ds")
    kill_at_random_moments(tmp_path / "trials", files, seconds, 4, **run)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real file system that fills up: a tmpfs of a given size (needs the right to mount, e.g. root)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = []

    def mount(kilobytes: int, *, options: str = "") -> Path:
        options = f"size={kilobytes}k" + (f",{options}" if options else "")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True)
        if result.returncode != 0 and not mounted:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()}); needs root")
        assert result.returncode == 0, result.stderr.decode()
        mounted.append(mount_point)
        return mount_point

    yield mount
    if mounted:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_disk_that_fills_up_stops_the_run_with_a_clear_error_and_the_run_resumes_once_there_is_room(
    small_tmpfs, reference
):
    files, _ = reference
    shard_bytes = sum(len(data) for path, data in files.items() if path.startswith("data/"))
    disk = small_tmpfs(shard_bytes // 2 // 1024)
    out = disk / "ds"
    failed = subprocess.run(command(out), cwd=ROOT, capture_output=True, timeout=300)
    message = failed.stderr.decode()
    assert failed.returncode == 1, message
    assert "No space left on device" in message and "re-run the same command to resume" in message, message
    assert "Traceback" not in message
    manifest = read_manifest(out)
    assert 0 < len(manifest.shards) < manifest.num_shards
    for entry in manifest.shards.values():
        assert (out / entry.path).read_bytes() == files[entry.path], "a finished shard was damaged"
    assert temporaries(out) == []

    small_tmpfs(4 * shard_bytes // 1024, options="remount")
    finish(out)
    assert published_files(out) == files
    assert temporaries(out) == []


def test_a_folder_that_becomes_unwritable_mid_run_stops_the_run_with_a_clear_error_and_the_run_resumes(tmp_path):
    """`chattr +i` on `data/` once a shard is in: root ignores permission bits, but not an immutable folder."""
    run = {"num": 64, "workers": 1}  # 16 shards: the folder turns unwritable mid-run on a fast machine too
    finish(tmp_path / "uninterrupted" / "ds", **run)
    files = published_files(tmp_path / "uninterrupted" / "ds")
    out = tmp_path / "ds"
    process = start(out, **run)
    wait_for_shards(out, process, 1)
    assert process.poll() is None, "the run finished before the folder could be made unwritable"
    locked = subprocess.run(["chattr", "+i", str(out / "data")], capture_output=True)
    if locked.returncode != 0:
        process.kill()
        process.wait()
        pytest.skip(f"cannot make a folder immutable here ({locked.stderr.decode().strip()}); needs root")
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        subprocess.run(["chattr", "-i", str(out / "data")], check=True)
    message = stderr.decode()
    assert process.returncode == 1, message
    assert "Operation not permitted" in message and "re-run the same command to resume" in message, message
    assert "Traceback" not in message
    for entry in read_manifest(out).shards.values():
        assert (out / entry.path).read_bytes() == files[entry.path], "a finished shard was damaged"
    finish(out, **run)
    assert published_files(out) == files
    assert temporaries(out) == []


def test_an_object_store_that_refuses_writes_stops_the_run_and_the_run_resumes(monkeypatch, chart_dataset):
    """The same through `FsspecStore`: fsspec's memory filesystem, given a quota, stands in for a full bucket."""
    room = {"bytes": 60_000}
    upload = MemoryFileSystem.put_file

    def put_file_within_quota(self, lpath, rpath, *args, **kwargs):
        size = os.path.getsize(lpath)
        if size > room["bytes"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), rpath)
        room["bytes"] -= size
        return upload(self, lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "put_file", put_file_within_quota)
    url = f"memory://full-{uuid.uuid4().hex[:8]}/ds"
    options = RunOptions(out=url, num=12, seed=3, workers=2, shard_size=6)
    with pytest.raises(GenerationError, match=r"No space left on device.*re-run the same command to resume"):
        run(DOMAIN, ChartConfig(**SMALL), options)
    store = FsspecStore(url)
    assert store.temporaries() == []
    assert not store.exists("README.md")

    room["bytes"] = 10**9
    assert run(DOMAIN, ChartConfig(**SMALL), options).complete
    assert (
        store.read_bytes("data/train-00000-of-00002.parquet")
        == (chart_dataset / "data" / "train-00000-of-00002.parquet").read_bytes()
    )
    assert store.read_bytes("manifest.json") == (chart_dataset / "manifest.json").read_bytes()
    assert store.temporaries() == []


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_ctrl_c_stops_every_worker_keeps_finished_shards_and_says_how_to_resume(tmp_path, backend):
    # Long enough (16 shards, one worker) that the interrupt always lands mid-run, on a fast machine too.
    run = {"num": 64, "workers": 1, "backend": backend}
    finish(tmp_path / "uninterrupted" / "ds", **run)
    files = published_files(tmp_path / "uninterrupted" / "ds")
    out = tmp_path / "ds"
    process = start(out, **run)
    wait_for_shards(out, process, 1)
    workers = [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
    assert workers, "the run finished before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()
    assert "interrupted; re-run the same command to resume" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    time.sleep(0.5)
    alive = [pid for pid in workers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert alive == [], "worker processes (and on Ray, the instance the run started) outlived the interrupted run"
    manifest = read_manifest(out)
    assert 0 < len(manifest.shards) < manifest.num_shards, "interrupted too late to test anything"
    for entry in manifest.shards.values():
        assert (out / entry.path).read_bytes() == files[entry.path]
    finish(out, **run)
    assert published_files(out) == files
    assert temporaries(out) == []


def test_a_second_run_into_the_same_folder_refuses_and_the_first_is_unharmed(tmp_path):
    out = tmp_path / "ds"
    first = start(out, num=160, workers=1)
    wait_for_shards(out, first, 1)
    for extra in ([], ["--seed", "12"], ["--shard", "0/2"]):
        assert first.poll() is None, "the first run finished before the second started"
        second = subprocess.run([*command(out, num=160), *extra], cwd=ROOT, capture_output=True, timeout=120)
        assert second.returncode == 1, second.stdout.decode()
        assert "another vzero run is writing to" in second.stderr.decode(), second.stderr.decode()
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()
    finish(tmp_path / "uninterrupted" / "ds", num=160)
    assert published_files(out) == published_files(tmp_path / "uninterrupted" / "ds")
