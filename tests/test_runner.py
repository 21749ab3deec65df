"""The runner on the real chart domain: determinism, sharding, resume, the report and bad options."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chart_edit.domain import DOMAIN, ChartConfig
from datagen.errors import ConfigError, GenerationError, ResumeMismatchError
from datagen.quality import QualityGate
from datagen.runner import RunOptions, prepare_output, run
from datagen.seeding import item_seed
from datagen.store import LocalStore
from tests.conftest import SMALL, content_hash, make_chart_dataset


def records_by_id(dataset_dir: Path) -> dict[str, dict]:
    rows = {}
    for path in sorted((dataset_dir / "data").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            rows[row["id"]] = row
    return rows


def test_records_are_byte_identical_across_worker_counts_and_shard_splits(tmp_path, chart_dataset):
    reference = records_by_id(chart_dataset)
    assert len(reference) == 12

    two_workers = make_chart_dataset(tmp_path / "w2", num=12, seed=3, workers=2)
    assert content_hash(two_workers) == content_hash(chart_dataset)

    split = tmp_path / "split"
    for job in [(1, 2), (0, 2)]:
        run(DOMAIN, ChartConfig(**SMALL), RunOptions(out=split, num=12, seed=3, shard_size=4, job=job))
    assert sorted(path.name for path in (split / "data").glob("*.parquet")) == [
        f"train-0000{k}-of-00003.parquet" for k in range(3)
    ]
    assert records_by_id(split) == reference
    assert json.loads((split / "manifest.json").read_text())["complete"] is True


def test_rerun_keeps_finished_shards_and_remakes_a_corrupted_one(tmp_path):
    out = make_chart_dataset(tmp_path / "ds", num=12, seed=5)
    before = content_hash(out)
    shard = out / "data" / "train-00001-of-00002.parquet"
    untouched = out / "data" / "train-00000-of-00002.parquet"
    mtime = untouched.stat().st_mtime_ns
    shard.write_bytes(shard.read_bytes()[:-100])

    summary = run(DOMAIN, ChartConfig(**SMALL), RunOptions(out=out, num=12, seed=5, shard_size=6))
    assert (summary.shards_kept, summary.shards_made) == (1, 1)
    assert untouched.stat().st_mtime_ns == mtime
    assert content_hash(out) == before


def test_rerun_with_a_different_config_fails_naming_the_difference(tmp_path):
    out = make_chart_dataset(tmp_path / "ds", num=6, seed=1)
    with pytest.raises(ResumeMismatchError) as caught:
        run(DOMAIN, ChartConfig(**{**SMALL, "changes": 1}), RunOptions(out=out, num=6, seed=1, shard_size=6))
    assert "config.changes" in str(caught.value) and "2" in str(caught.value)
    with pytest.raises(ResumeMismatchError, match="seed"):
        run(DOMAIN, ChartConfig(**SMALL), RunOptions(out=out, num=6, seed=2, shard_size=6))


def test_rejected_items_are_regenerated_from_derived_seeds_and_reported(tmp_path):
    strict = replace(DOMAIN, quality=QualityGate(max_area_fraction=0.02))
    out = tmp_path / "strict"
    summary = run(strict, ChartConfig(**SMALL), RunOptions(out=out, num=12, seed=0, shard_size=12, max_attempts=6))
    events = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    retried = [event for event in events if event["event"] == "retried"]
    assert retried and summary.retried == len(retried)
    assert all("diff_mask covers" in event["reason"] for event in events)
    rows = records_by_id(out)
    assert len(rows) + summary.skipped == 12
    for event in retried:
        assert event["seed"] == item_seed(0, event["index"], event["attempt"])
        row = rows.get(f"chart-s0-{event['index']:08d}")
        if row is not None:
            assert row["seed"] != event["seed"]


@pytest.mark.parametrize("num", [40, 3])
def test_a_run_where_everything_fails_stops_with_the_reason(tmp_path, num):
    impossible = replace(DOMAIN, quality=QualityGate(min_changed_pixels=10**9))
    with pytest.raises(GenerationError, match="clearly changed pixels"):
        run(impossible, ChartConfig(**SMALL), RunOptions(out=tmp_path / "x", num=num, shard_size=40, max_attempts=1))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num": 0}, "--num"),
        ({"workers": 0}, "--workers"),
        ({"shard_size": 0}, "--shard-size"),
        ({"job": (2, 2)}, "--shard"),
    ],
)
def test_bad_run_options_fail_before_any_work(tmp_path, options, message):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=message):
        run(DOMAIN, ChartConfig(**SMALL), RunOptions(**{"out": out, "num": 4, **options}))
    assert not out.exists()


def test_an_unwritable_or_foreign_output_folder_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write|not a folder"):
        run(DOMAIN, ChartConfig(**SMALL), RunOptions(out=blocker / "out", num=2))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        run(DOMAIN, ChartConfig(**SMALL), RunOptions(out=foreign, num=2))


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _workers(pid: int) -> list[int]:
    return [child for child in _children(pid) if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()]


def _shards_done(out: Path) -> int:
    try:
        return json.loads((out / "manifest.json").read_text())["counts"]["shards_done"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_sigkill_of_a_worker_and_the_parent_then_rerun_equals_an_uninterrupted_run(tmp_path):
    command = [
        str(Path(sys.executable).parent / "vzero"),
        "chart",
        "--num",
        "48",
        "--seed",
        "9",
        "--workers",
        "2",
        "--shard-size",
        "4",
        "--size",
        "256x192",
    ]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [*command, "--out", str(killed)],
        cwd=Path(__file__).parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while _shards_done(killed) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    workers = _workers(process.pid)
    assert workers, "the run finished before it could be interrupted"
    os.kill(workers[0], signal.SIGKILL)
    time.sleep(0.3)
    for child in _children(process.pid):
        with contextlib.suppress(ProcessLookupError):  # a child may end between listing and killing
            os.kill(child, signal.SIGKILL)
    process.kill()
    process.wait()
    assert _shards_done(killed) < 12, "the run finished before it could be interrupted"

    finished = subprocess.run([*command, "--out", str(killed)], cwd=Path(__file__).parents[1], capture_output=True)
    assert finished.returncode == 0, finished.stderr.decode()
    uninterrupted = make_chart_dataset(tmp_path / "clean", num=48, seed=9, workers=2, shard_size=4)
    assert content_hash(killed) == content_hash(uninterrupted)
    ids = [row_id for row_id in records_by_id(killed)]
    assert len(ids) == len(set(ids)) == 48 - json.loads((killed / "manifest.json").read_text())["counts"]["skipped"]
    assert not list((killed / "data").glob(".*.tmp"))


def test_two_jobs_of_an_array_started_together_into_a_new_folder_make_the_whole_dataset(tmp_path, chart_dataset):
    vzero = str(Path(sys.executable).parent / "vzero")
    out = tmp_path / "array"
    command = [vzero, "chart", "--out", str(out), "--num", "12", "--seed", "3", "--workers", "1",
               "--shard-size", "6", "--size", "256x192"]  # fmt: skip
    jobs = [subprocess.Popen([*command, "--shard", f"{i}/2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for i in range(2)]  # fmt: skip
    for job in jobs:
        assert job.wait(timeout=300) == 0, job.stderr.read().decode()
    assert content_hash(out) == content_hash(chart_dataset)
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    assert (out / "README.md").exists() and (out / "preview.png").exists()


def test_a_folder_another_job_is_just_starting_is_accepted_but_shards_without_a_manifest_are_not(tmp_path):
    starting = tmp_path / "starting"
    (starting / "data").mkdir(parents=True)
    (starting / ".manifest.lock").write_text("")
    (starting / "data" / ".write-probe-4242").write_bytes(b"")
    prepare_output(LocalStore(starting))

    orphaned = tmp_path / "orphaned"
    (orphaned / "data").mkdir(parents=True)
    (orphaned / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    with pytest.raises(ConfigError, match=r"data/train-00000-of-00001.parquet"):
        prepare_output(LocalStore(orphaned))
