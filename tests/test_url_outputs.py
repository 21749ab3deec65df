"""Outputs at URLs: fsspec's in-memory filesystem stands in for object storage, through `FsspecStore`, the
same code path as `s3://`, `gs://` and `hf://`.

What is checked: the same bytes as a local folder; resume after shards went missing; no temporary object left;
a second writer refused through the lease, with dead and expired leases taken over; what a URL cannot do
(`--shard` job arrays) refused with the reason.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid

import datasets
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from huggingface_hub import HfApi, constants

from chart_edit.domain import DOMAIN, ChartConfig
from datagen.errors import ConfigError
from datagen.runner import RunOptions, run
from datagen.store import LEASE_EXPIRY_SECONDS, LEASE_NAME, FsspecStore, open_store
from tests.conftest import SMALL, content_hash
from tests.hub_server import TOKEN

pytest_plugins = ["hub_server"]  # the `hub` fixture: a running stand-in Hub


def new_url() -> str:
    return f"memory://vzero-test-{uuid.uuid4().hex[:8]}/ds"


def url_options(url: str, **changes) -> RunOptions:
    return RunOptions(out=url, **{"num": 12, "seed": 3, "workers": 2, "shard_size": 6, **changes})


def stored_files(url: str) -> dict[str, bytes]:
    store = FsspecStore(url)
    return {path: store.read_bytes(path) for path in store.files()}


def local_files(folder) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    }


def test_a_url_output_holds_the_same_files_as_a_local_folder(chart_dataset):
    url = new_url()
    summary = run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    assert summary.complete and summary.out == url and summary.records_made == 12
    stored, local = stored_files(url), local_files(chart_dataset)
    assert sorted(stored) == sorted(local)
    assert [path for path in stored if stored[path] != local[path]] == []


def test_a_url_output_resumes_making_only_what_is_missing(chart_dataset):
    url = new_url()
    run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    before = stored_files(url)
    store = FsspecStore(url)
    store.remove("data/train-00001-of-00002.parquet")
    store.remove("README.md")
    summary = run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    assert (summary.shards_made, summary.shards_kept, summary.records_made) == (1, 1, 6)
    assert stored_files(url) == before


def test_a_shard_of_the_wrong_size_at_a_url_is_made_again(chart_dataset):
    url = new_url()
    run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    good = FsspecStore(url).read_bytes("data/train-00000-of-00002.parquet")
    FsspecStore(url).write_bytes("data/train-00000-of-00002.parquet", good[:-10])
    summary = run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    assert (summary.shards_made, summary.shards_kept) == (1, 1)
    assert FsspecStore(url).read_bytes("data/train-00000-of-00002.parquet") == good


def test_an_upload_cut_off_half_way_leaves_no_object_under_the_final_name(monkeypatch):
    url = new_url()
    store = FsspecStore(url)

    def upload_half_then_drop(self, lpath, rpath, *args, **kwargs):
        with open(lpath, "rb") as source, self.open(rpath, "wb") as target:
            target.write(source.read()[:5])
        raise ConnectionError("connection reset during upload")

    with monkeypatch.context() as patched:
        patched.setattr(MemoryFileSystem, "put_file", upload_half_then_drop)
        with pytest.raises(ConnectionError), store.committing("data/train-00000-of-00001.parquet") as temporary:
            temporary.write_bytes(b"a whole shard")
    assert store.files() == []


def test_a_temporary_object_left_by_a_crash_is_swept_by_the_next_run():
    url = new_url()
    store = FsspecStore(url)
    leftover = f"data/.train-00000-of-00001.parquet.{uuid.uuid4().hex[:12]}.tmp"
    store.write_bytes(leftover, b"half a shard")
    run(DOMAIN, ChartConfig(**SMALL), url_options(url, num=6))
    assert store.temporaries() == []
    assert sorted(store.files()) == [
        "README.md",
        "data/train-00000-of-00001.parquet",
        "manifest.json",
        "preview.png",
        "report.jsonl",
    ]


def write_lease(url: str, *, host: str, pid: int, age: float) -> None:
    lease = {"owner": "someone", "host": host, "pid": pid, "renewed": time.time() - age}
    FsspecStore(url).write_text(LEASE_NAME, json.dumps(lease))


def test_a_second_run_into_a_url_refuses_while_a_live_run_holds_the_lease():
    url = new_url()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lease(url, host=socket.gethostname(), pid=sleeper.pid, age=5)
        with pytest.raises(ConfigError, match=rf"another vzero run \(host .*, pid {sleeper.pid}, last seen 5 s ago\)"):
            run(DOMAIN, ChartConfig(**SMALL), url_options(url))
        write_lease(url, host="another-machine", pid=1, age=LEASE_EXPIRY_SECONDS - 30)
        with pytest.raises(ConfigError, match=r"another vzero run \(host another-machine"):
            run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not FsspecStore(url).exists("manifest.json"), "a refused run must not write anything"


def test_a_dead_or_expired_lease_is_taken_over_and_removed_at_the_end():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for host, pid, age in [(socket.gethostname(), dead.pid, 1), ("another-machine", 1, LEASE_EXPIRY_SECONDS + 1)]:
        url = new_url()
        write_lease(url, host=host, pid=pid, age=age)
        assert run(DOMAIN, ChartConfig(**SMALL), url_options(url, num=6)).complete
        assert not FsspecStore(url).exists(LEASE_NAME)


def test_job_arrays_and_foreign_content_at_a_url_are_refused_with_the_reason():
    url = new_url()
    with pytest.raises(ConfigError, match=r"--shard i/n job arrays need a local or shared folder.*--backend ray"):
        run(DOMAIN, ChartConfig(**SMALL), url_options(url, job=(0, 2)))
    FsspecStore(url).write_bytes("notes.txt", b"someone's file")
    with pytest.raises(ConfigError, match=r"is not empty and holds no manifest.json \(notes.txt\)"):
        run(DOMAIN, ChartConfig(**SMALL), url_options(url))


def test_urls_and_paths_open_the_right_store(tmp_path):
    assert open_store("memory://bucket/name").name == "name"
    assert type(open_store(f"file://{tmp_path}")).__name__ == "FsspecStore"
    assert type(open_store(str(tmp_path))).__name__ == "LocalStore"
    with pytest.raises(ConfigError, match=r"cannot open output nosuchprotocol://x"):
        open_store("nosuchprotocol://x")


def test_a_hub_dataset_url_is_written_and_resumed_through_huggingface_hubs_own_filesystem(
    hub, monkeypatch, chart_dataset
):
    """`hf://datasets/ORG/NAME` through the real `HfFileSystem`, against the stand-in Hub (tests/hub_server.py):
    every file is a commit, every move a server-side copy plus a delete, reads are range requests."""
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    HfApi(endpoint=hub.url, token=TOKEN).create_repo("org/ds", repo_type="dataset")
    url = "hf://datasets/org/ds"
    summary = run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    assert summary.complete and summary.out == url
    published = {path: (hub.stored_folder("org/ds") / path).read_bytes() for path in hub.files("org/ds")}
    assert published == local_files(chart_dataset)
    assert not [request for request in hub.requests if ".tmp" in request], "a Hub upload is its own atomic commit"

    HfApi(endpoint=hub.url, token=TOKEN).delete_file("data/train-00001-of-00002.parquet", "org/ds", repo_type="dataset")
    summary = run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    assert (summary.shards_made, summary.shards_kept) == (1, 1)
    assert {path: (hub.stored_folder("org/ds") / path).read_bytes() for path in hub.files("org/ds")} == published


def test_the_cli_writes_to_a_url_and_its_load_hint_loads_the_dataset_back(tmp_path, chart_dataset):
    from typer.testing import CliRunner

    from cli import app

    url = f"file://{tmp_path}/bucket/ds"
    arguments = ["chart", "--out", url, "--num", "12", "--seed", "3", "--shard-size", "6", "--size", "256x192"]
    result = CliRunner().invoke(app, [*arguments, "--workers", "2"])
    assert result.exit_code == 0, result.output
    hint = f"datasets.load_dataset('parquet', data_files='{url}/data/*.parquet', split='train')"
    assert hint in result.output.replace("\n", "")
    pairs = datasets.load_dataset("parquet", data_files=f"{url}/data/*.parquet", split="train")
    assert pairs["id"] == [f"chart-s3-{index:08d}" for index in range(12)]
    assert content_hash(tmp_path / "bucket" / "ds") == content_hash(chart_dataset)
    assert "file:<absolute path>" in (tmp_path / "bucket" / "ds" / "manifest.json").read_text()


def test_info_and_preview_read_a_dataset_at_a_url():
    from typer.testing import CliRunner

    from cli import app

    url = new_url()
    run(DOMAIN, ChartConfig(**SMALL), url_options(url))
    store = FsspecStore(url)
    store.remove("preview.png")
    shown = CliRunner().invoke(app, ["info", url])
    assert shown.exit_code == 0, shown.output
    assert f"{url}: 12 pairs of 12 planned" in shown.output.replace("\n", "")
    drawn = CliRunner().invoke(app, ["preview", url, "--num", "2"])
    assert drawn.exit_code == 0, drawn.output
    assert store.read_bytes("preview.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_hub_dataset_that_does_not_exist_is_a_clear_error(hub, monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    with pytest.raises(ConfigError, match=r"cannot write to output hf://datasets/org/missing: .*repository not found"):
        run(DOMAIN, ChartConfig(**SMALL), url_options("hf://datasets/org/missing"))
