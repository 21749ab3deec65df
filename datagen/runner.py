"""The resumable, sharded, parallel runner every domain uses: `(config, index) -> record`, at scale.

Items are made in a process pool; the parent collects them per shard and writes each shard once all
of its items are in. Because an item depends only on (config, run seed, index), shards are identical
whatever the worker count, the `--shard i/n` split, or the order in which items finish.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

import datagen
from datagen import manifest as manifests
from datagen.card import write_card
from datagen.checks import check_int, check_positive
from datagen.errors import ConfigError, GenerationError, ResumeMismatchError
from datagen.failures import debug_enabled
from datagen.files import remove_stale_temporaries, sha256_file
from datagen.layout import DATA_DIR, LOCK_NAME, MANIFEST_NAME, REPORT_NAME
from datagen.manifest import Manifest, ReportEvent, ShardEntry
from datagen.pool import WorkerPool
from datagen.preview import write_preview
from datagen.public import PathScrubber, public_config
from datagen.registry import Domain, PairGenerator
from datagen.shards import ShardPlan, plan_shards, select_shards, write_shard
from datagen.worker import ItemOutcome, WorkerSpec

# Abort once this many items have failed and they are most of what was tried: that is a bug or a bad
# config, not a few bad inputs.
ABORT_AFTER_FAILURES = 20


@dataclass(frozen=True)
class RunOptions:
    """How to run; only `num`, `seed` and `shard_size` (with the domain config) decide the output bytes."""

    out: Path
    """Dataset folder (created if missing)."""
    num: int
    """Number of pair indices to make, `0 .. num-1`."""
    seed: int = 0
    """Run seed; every item's seed derives from it and the item's index."""
    workers: int = 1
    """Worker processes."""
    shard_size: int = 500
    """Items per Parquet shard."""
    job: tuple[int, int] | None = None
    """`(i, n)`: make only every n-th shard starting at i, for job arrays writing into one folder."""
    max_attempts: int = 4
    """Attempts per item (derived seeds) before it is skipped and reported."""
    item_timeout: float = 600.0
    """Wall-clock seconds a worker may spend on one item (or on starting up) before it counts as hung."""
    command: str = ""
    """The command line that started the run, recorded in the manifest and the dataset card."""
    debug: bool = False
    """Record every failure's whole traceback in `report.jsonl` and print it (`--debug`, `VZERO_DEBUG=1`)."""


@dataclass(frozen=True)
class RunSummary:
    """What a call to `run` did, for the CLI's summary table."""

    out: Path
    shards_made: int
    shards_kept: int
    records_made: int
    retried: int
    skipped: int
    complete: bool
    seconds: float


def validate_options(options: RunOptions) -> None:
    """Fail before any work on options that cannot be right."""
    check_int("--num (pairs)", options.num, 1)
    check_int("--seed", options.seed, 0)
    check_int("--workers", options.workers, 1)
    check_int("--shard-size", options.shard_size, 1)
    check_positive("--item-timeout", options.item_timeout, unit="seconds")
    check_int("max_attempts", options.max_attempts, 1)
    if options.job is not None:
        index, count = options.job
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"--shard must be i/n with 0 <= i < n, got {index}/{count}")


def foreign_content(out: Path) -> list[str]:
    """What in `out` was not made by a vzero run, so that a run never mixes its shards into someone's folder.

    A folder holding only what a run creates before its manifest exists (another job of the same array
    may be a moment ahead) is not foreign; shards without a manifest are.
    """
    if not out.is_dir() or (out / MANIFEST_NAME).exists():
        return []
    ours = {DATA_DIR, LOCK_NAME, MANIFEST_NAME, REPORT_NAME}
    foreign = [entry.name for entry in out.iterdir() if entry.name not in ours]
    data = out / DATA_DIR
    if data.is_dir():
        foreign += [f"{DATA_DIR}/{entry.name}" for entry in data.iterdir() if not entry.name.startswith(".")]
    return sorted(foreign)


def prepare_out_dir(out: Path) -> None:
    """Create the folder and prove it is writable, or explain why it cannot be used."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    foreign = foreign_content(out)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ConfigError(f"output folder {out} is not empty and holds no {MANIFEST_NAME} ({shown}); use a new folder")
    try:
        (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
        probe = out / DATA_DIR / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"cannot write to output folder {out}: {error.strerror or error}") from error


def open_run(domain: Domain, config: Any, options: RunOptions, generator: PairGenerator) -> Manifest:
    """Start a manifest, or check that the existing one was made by the same command on the same inputs."""
    scrubber = PathScrubber.for_config(dataclasses.asdict(config))
    wanted = manifests.fingerprint(
        domain=domain.name,
        config=public_config(dataclasses.asdict(config)),
        inputs=generator.input_digest,
        num=options.num,
        seed=options.seed,
        shard_size=options.shard_size,
        version=datagen.__version__,
    )
    with manifests.locked(options.out):
        manifest = manifests.read_manifest(options.out)
        if manifest is not None:
            changed = manifests.differences(manifest.fingerprint, wanted)
            if changed:
                raise ResumeMismatchError(str(options.out), changed)
            return manifest
        licence = getattr(generator, "licence", None)
        manifest = Manifest(
            fingerprint=wanted,
            command=scrubber.scrub(options.command),
            num_shards=len(plan_shards(options.num, options.shard_size)),
            input_report=[
                ReportEvent("input_skipped", scrubber.scrub(error.reason), source=scrubber.scrub(error.source))
                for error in generator.skipped_inputs
            ],
            licence=licence.to_json() if licence is not None else None,
        )
        manifests.write_manifest(options.out, manifest)
        return manifest


def shards_to_make(out: Path, manifest: Manifest, plans: list[ShardPlan]) -> tuple[list[ShardPlan], int]:
    """Planned shards that are missing or fail their checksum, and how many were kept."""
    todo: list[ShardPlan] = []
    kept = 0
    for plan in plans:
        entry = manifest.shards.get(plan.name)
        path = out / plan.relative_path
        if entry is not None and path.exists() and sha256_file(path) == entry.sha256:
            kept += 1
        else:
            todo.append(plan)
    return todo, kept


def record_shard(out: Path, plan: ShardPlan, outcomes: list[ItemOutcome]) -> int:
    """Write one finished shard, register it in the manifest and return how many records it holds."""
    outcomes.sort(key=lambda outcome: outcome.index)
    rows = [outcome.row for outcome in outcomes if outcome.row is not None]
    events = [event for outcome in outcomes for event in outcome.events]
    path = out / plan.relative_path
    remove_stale_temporaries(path)
    digest = write_shard(rows, path)
    entry = ShardEntry(plan.relative_path, plan.start, plan.stop, len(rows), digest, path.stat().st_size, events)
    with manifests.locked(out):
        manifest = manifests.read_manifest(out)
        manifest.shards[plan.name] = entry
        manifests.write_manifest(out, manifest)
    return len(rows)


class ShardCollector:
    """Collects outcomes per shard in the parent and writes each shard as soon as it is complete."""

    def __init__(self, out: Path, plans: list[ShardPlan]) -> None:
        self.out = out
        self.plans = sorted(plans, key=lambda plan: plan.start)
        self.starts = [plan.start for plan in self.plans]
        self.outcomes: dict[int, list[ItemOutcome]] = {plan.number: [] for plan in plans}
        self.records = 0
        self.retried = 0
        self.skipped = 0
        self.unusable = 0
        """Skipped because their input cannot become a pair: not a sign of a bug, so not in the abort rule."""
        self.finished_items = 0
        self.first_failure = ""

    def add(self, outcome: ItemOutcome) -> None:
        self.finished_items += 1
        self.retried += sum(event.event == "retried" for event in outcome.events)
        if outcome.row is None:
            self.skipped += 1
            if outcome.events[-1].unusable:
                self.unusable += 1
            else:
                self.first_failure = self.first_failure or outcome.events[-1].describe()
        self.check_failure_rate()
        plan = self.plans[bisect.bisect_right(self.starts, outcome.index) - 1]
        bucket = self.outcomes[plan.number]
        bucket.append(outcome)
        if len(bucket) == plan.stop - plan.start:
            self.records += record_shard(self.out, plan, bucket)
            del self.outcomes[plan.number]

    def check_failure_rate(self) -> None:
        failed, tried = self.skipped - self.unusable, self.finished_items - self.unusable
        if failed >= ABORT_AFTER_FAILURES and failed * 2 > tried:
            raise GenerationError(
                f"{failed} of {tried} items failed every attempt; stopping. First reason: {self.first_failure}"
            )


def execute(plans: list[ShardPlan], spec: WorkerSpec, options: RunOptions, progress: Progress | None) -> ShardCollector:
    """Make every item of `plans` in worker processes, writing each shard as soon as its items are in."""
    collector = ShardCollector(options.out, plans)
    task_id = progress.add_task(spec.domain, total=sum(p.stop - p.start for p in plans)) if progress else None

    def on_outcome(outcome: ItemOutcome) -> None:
        if progress is not None:
            for event in outcome.events:
                if event.traceback:
                    progress.console.print(
                        f"item {event.index}, attempt {event.attempt}: {event.describe()}",
                        markup=False,
                        highlight=False,
                    )
        collector.add(outcome)
        if progress is not None:
            progress.advance(task_id)

    pool = WorkerPool(spec, workers=options.workers, item_timeout=options.item_timeout)
    if progress is not None:
        pool.on_worker_lost = lambda message: progress.console.print(f"[yellow]{message}[/]")
    pool.run([index for plan in plans for index in range(plan.start, plan.stop)], on_outcome)
    return collector


def run(domain: Domain, config: Any, options: RunOptions, *, progress: Progress | None = None) -> RunSummary:
    """Make (or finish) the dataset of `options.num` pairs of `domain` in `options.out`.

    Re-running the same call keeps every verified shard and makes only the missing ones; a call with a
    different config into the same folder raises `ResumeMismatchError` before any work.
    """
    started = time.perf_counter()
    validate_options(options)
    generator = domain.make_generator(config)
    prepare_out_dir(options.out)
    manifest = open_run(domain, config, options, generator)
    plans = select_shards(plan_shards(options.num, options.shard_size), options.job)
    todo, kept = shards_to_make(options.out, manifest, plans)
    spec = WorkerSpec(
        domain.name,
        domain.make_generator,
        config,
        domain.quality,
        options.seed,
        options.max_attempts,
        debug=debug_enabled(options.debug),
    )
    collector = execute(todo, spec, options, progress) if todo else ShardCollector(options.out, [])
    final = manifests.read_manifest(options.out)
    if final.complete and final.counts.written == 0:
        skipped = [line for line in final.report_lines() if line.event == "skipped"]
        raise GenerationError(
            f"every item failed every attempt; first reason: {skipped[0].describe() if skipped else 'unknown'}"
        )
    if final.complete:
        write_preview(options.out)
        write_card(options.out)
    return RunSummary(
        out=options.out,
        shards_made=len(todo),
        shards_kept=kept,
        records_made=collector.records,
        retried=collector.retried,
        skipped=collector.skipped,
        complete=final.complete,
        seconds=time.perf_counter() - started,
    )
