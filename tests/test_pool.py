"""Worker processes that die or hang on one item cost that item an attempt; the run goes on.

The sabotaged generator wraps the real chart generator and kills its own process (as a segfault in
Blender or OpenCV would) or sleeps forever on chosen items.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chart_edit.domain import DOMAIN, ChartConfig
from datagen.errors import GenerationError
from datagen.record import Pair
from datagen.registry import Domain
from datagen.runner import RunOptions, run
from datagen.seeding import item_seed
from tests.conftest import SMALL, content_hash, make_chart_dataset


@dataclass(frozen=True)
class SabotageConfig:
    chart: dict = field(default_factory=lambda: dict(SMALL))
    die_at: tuple[int, ...] = ()
    """Indices whose every attempt kills the worker process."""
    hang_at_seeds: tuple[int, ...] = ()
    """Item seeds at which the worker sleeps forever."""
    die_on_start: bool = False
    """Worker processes die while building the generator (the parent's own check passes)."""
    fail_on_start: bool = False
    """Worker processes raise while building the generator (e.g. no renderer there)."""


class SabotagedGenerator:
    def __init__(self, config: SabotageConfig) -> None:
        in_worker = multiprocessing.parent_process() is not None
        if config.die_on_start and in_worker:
            os.kill(os.getpid(), signal.SIGKILL)
        if config.fail_on_start and in_worker:
            raise RuntimeError("cannot open the renderer")
        self.config = config
        self.chart = DOMAIN.make_generator(ChartConfig(**config.chart))
        self.skipped_inputs = []
        self.input_digest = ""

    def __call__(self, index: int, seed: int) -> Pair:
        if index in self.config.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if seed in self.config.hang_at_seeds:
            time.sleep(3600)
        return self.chart(index, seed)


def make_sabotaged_generator(config: SabotageConfig) -> SabotagedGenerator:
    return SabotagedGenerator(config)


SABOTAGED = Domain(
    name="chart", config_type=SabotageConfig, make_generator=make_sabotaged_generator, quality=DOMAIN.quality
)


def report(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]


def test_an_item_that_kills_its_worker_every_time_is_skipped_and_the_run_completes(tmp_path):
    out = tmp_path / "crash"
    options = RunOptions(out=out, num=8, seed=2, workers=2, shard_size=4, max_attempts=2)
    summary = run(SABOTAGED, SabotageConfig(die_at=(5,)), options)

    assert summary.complete and summary.records_made == 7 and summary.skipped == 1
    events = [event for event in report(out) if event["index"] == 5]
    assert [(event["attempt"], event["event"]) for event in events] == [
        (0, "retried"),
        (0, "retried"),
        (1, "retried"),
        (1, "skipped"),
    ]
    assert all("worker process died (exit code -9)" in event["reason"] for event in events)
    ids = {row["id"] for path in (out / "data").glob("*.parquet") for row in pq.read_table(path).to_pylist()}
    assert ids == {f"chart-s2-{index:08d}" for index in range(8) if index != 5}


def test_a_hung_item_times_out_and_succeeds_on_its_next_derived_seed(tmp_path):
    out = tmp_path / "hang"
    hang_seed = item_seed(4, 1, 0)
    options = RunOptions(out=out, num=4, seed=4, workers=1, shard_size=4, item_timeout=10)
    summary = run(SABOTAGED, SabotageConfig(hang_at_seeds=(hang_seed,)), options)

    assert summary.complete and summary.records_made == 4
    rows = {row["id"]: row for row in pq.read_table(out / "data" / "train-00000-of-00001.parquet").to_pylist()}
    assert rows["chart-s4-00000001"]["seed"] == item_seed(4, 1, 1)
    timeouts = [event for event in report(out) if "timed out after 10 s" in event["reason"]]
    assert [(event["index"], event["attempt"], event["event"]) for event in timeouts] == [(1, 0, "retried")]


def test_a_worker_killed_from_outside_once_does_not_change_the_dataset(tmp_path):
    """The first death on an attempt is retried with the same seed, so the bytes equal a clean run."""
    clean = make_chart_dataset(tmp_path / "clean", num=8, seed=6, shard_size=4)
    out = tmp_path / "killed-once"
    marker = tmp_path / "killed"

    summary = run(OnceKilled, OnceKilledConfig(marker=str(marker)), RunOptions(out=out, num=8, seed=6, shard_size=4))

    assert marker.exists(), "the worker was never killed"
    assert summary.complete and summary.skipped == 0
    assert content_hash(out) == content_hash(clean)


@dataclass(frozen=True)
class OnceKilledConfig:
    marker: str
    chart: dict = field(default_factory=lambda: dict(SMALL))


class OnceKilledGenerator(SabotagedGenerator):
    """Dies the first time it reaches index 3 in this run (a marker file remembers), like an OOM kill."""

    def __init__(self, config: OnceKilledConfig) -> None:
        super().__init__(SabotageConfig(chart=config.chart))
        self.marker = Path(config.marker)

    def __call__(self, index: int, seed: int) -> Pair:
        if index == 3 and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.chart(index, seed)


def make_once_killed_generator(config: OnceKilledConfig) -> OnceKilledGenerator:
    return OnceKilledGenerator(config)


OnceKilled = replace(SABOTAGED, config_type=OnceKilledConfig, make_generator=make_once_killed_generator)


def test_workers_that_die_while_starting_stop_the_run_with_the_reason(tmp_path):
    with pytest.raises(GenerationError, match="in a row ended without finishing an item; last one died"):
        run(SABOTAGED, SabotageConfig(die_on_start=True), RunOptions(out=tmp_path / "d", num=4, workers=1))


def test_a_generator_that_cannot_start_in_a_worker_stops_the_run_with_its_error(tmp_path):
    with pytest.raises(GenerationError, match="could not start: RuntimeError: cannot open the renderer"):
        run(SABOTAGED, SabotageConfig(fail_on_start=True), RunOptions(out=tmp_path / "f", num=4, workers=1))
