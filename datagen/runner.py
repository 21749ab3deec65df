"""The resumable, sharded, parallel runner every domain uses: `(config, index) -> record`, at scale.

Items are made in a process pool; the parent collects them per shard and writes each shard once all
of its items are in. Because an item depends only on (config, run seed, index), shards are identical
whatever the worker count, the `--shard i/n` split, or the order in which items finish.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress

import datagen
from datagen import manifest as manifests
from datagen.card import write_card
from datagen.checks import check_int, check_positive
from datagen.errors import ConfigError, GenerationError, ResumeMismatchError
from datagen.failures import debug_enabled
from datagen.layout import DATA_DIR, LOCK_NAME, MANIFEST_NAME, REPORT_NAME
from datagen.manifest import Manifest, ReportEvent, ShardEntry
from datagen.pool import WorkerPool
from datagen.preview import write_preview
from datagen.public import PathScrubber, public_config
from datagen.registry import Domain, PairGenerator
from datagen.shards import ShardPlan, plan_shards, select_shards, write_parquet
from datagen.store import LEASE_NAME, RUN_LOCK_NAME, Store, is_temporary, is_url, open_store
from datagen.worker import ItemOutcome, WorkerSpec

# Abort once this many items have failed and they are most of what was tried: that is a bug or a bad
# config, not a few bad inputs.
ABORT_AFTER_FAILURES = 20
BACKENDS = ("local", "ray")
RESUME_HINT = "finished shards are kept; re-run the same command to resume"


@dataclass(frozen=True)
class RunOptions:
    """How to run; only `num`, `seed` and `shard_size` (with the domain config) decide the output bytes."""

    out: Path | str
    """Dataset folder (created if missing), or a URL any installed fsspec filesystem writes (`s3://bucket/name`)."""
    num: int
    """Number of pair indices to make, `0 .. num-1`."""
    seed: int = 0
    """Run seed; every item's seed derives from it and the item's index."""
    workers: int = 1
    """Worker processes (`local`); CPUs of the Ray instance started when no `ray_address` is given (`ray`)."""
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
    backend: str = "local"
    """`local`: a process pool on this machine; `ray`: one Ray task per shard on a Ray cluster."""
    ray_address: str | None = None
    """The Ray cluster to join (`auto`, `HOST:PORT`, `ray://...`); None starts a local Ray instance."""


@dataclass(frozen=True)
class RunSummary:
    """What a call to `run` did, for the CLI's summary table."""

    out: str
    """Where the dataset is, as the user gave it."""
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
    if options.backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {options.backend!r}")
    if options.ray_address is not None and options.backend != "ray":
        raise ConfigError("--ray-address applies to --backend ray only")
    if options.job is not None:
        index, count = options.job
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"--shard must be i/n with 0 <= i < n, got {index}/{count}")


def foreign_content(store: Store) -> list[str]:
    """What in the output was not made by a vzero run, so that a run never mixes its shards into someone's folder.

    An output holding only what a run creates before its manifest exists (another job of the same array may be a
    moment ahead, or a run was killed before its first shard) is not foreign; shards without a manifest are.
    """
    if store.exists(MANIFEST_NAME):
        return []
    ours = {LOCK_NAME, MANIFEST_NAME, REPORT_NAME, RUN_LOCK_NAME, LEASE_NAME}
    foreign = set()
    for path in store.files():
        top, _, rest = path.partition("/")
        name = path.rsplit("/", 1)[-1]
        if path in ours or is_temporary(name) or (top == DATA_DIR and rest and name.startswith(".")):
            continue
        if top.startswith(".run-") and top.endswith(".lock"):
            continue
        foreign.add(top if top != DATA_DIR or not rest else f"{DATA_DIR}/{rest.split('/', 1)[0]}")
    return sorted(foreign)


def prepare_output(store: Store) -> None:
    """Refuse an output that holds someone else's files; prove it is writable, or explain why it cannot be used."""
    foreign = foreign_content(store)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ConfigError(
            f"output {store.location} is not empty and holds no {MANIFEST_NAME} ({shown}); use a new folder"
        )
    probe = f"{DATA_DIR}/.write-probe-{uuid.uuid4().hex[:8]}"
    try:
        store.write_bytes(probe, b"")
        store.remove(probe)
    except OSError as error:
        raise ConfigError(f"cannot write to output {store.location}: {error.strerror or error}") from error


def create_output(out: Path | str) -> Store:
    """The store of `--out`, its local folder created first (the run lock lives in it)."""
    store = open_store(out)
    if not is_url(out):
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"output {out} exists and is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot write to output folder {out}: {error.strerror or error}") from error
    return store


@contextlib.contextmanager
def writing(store: Store, what: str) -> Iterator[None]:
    """Turn a refused write (full disk, lost permission, a store's error) into one clear, resumable error."""
    try:
        yield
    except OSError as error:
        raise GenerationError(
            f"cannot write {what} to {store.location}: {error.strerror or error}; {RESUME_HINT} once it is fixed"
        ) from error


def open_run(domain: Domain, config: Any, options: RunOptions, generator: PairGenerator, store: Store) -> Manifest:
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
    with store.manifest_lock():
        manifest = manifests.read_manifest(store)
        if manifest is not None:
            changed = manifests.differences(manifest.fingerprint, wanted)
            if changed:
                raise ResumeMismatchError(store.location, changed)
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
        with writing(store, MANIFEST_NAME):
            manifests.write_manifest(store, manifest)
        return manifest


def shards_to_make(store: Store, manifest: Manifest, plans: list[ShardPlan]) -> tuple[list[ShardPlan], int]:
    """Planned shards that are missing or not the file the manifest recorded, and how many were kept."""
    todo: list[ShardPlan] = []
    kept = 0
    for plan in plans:
        entry = manifest.shards.get(plan.name)
        if entry is not None and store.is_intact(plan.relative_path, entry.sha256, entry.bytes):
            kept += 1
        else:
            todo.append(plan)
    return todo, kept


def commit_shard(store: Store, plan: ShardPlan, outcomes: list[ItemOutcome]) -> ShardEntry:
    """Write one finished shard to the store (committed atomically) and return its manifest entry."""
    outcomes.sort(key=lambda outcome: outcome.index)
    rows = [outcome.row for outcome in outcomes if outcome.row is not None]
    events = [event for outcome in outcomes for event in outcome.events]
    with writing(store, plan.relative_path), store.committing(plan.relative_path) as temporary:
        digest = write_parquet(rows, temporary)
        size = temporary.stat().st_size
    return ShardEntry(plan.relative_path, plan.start, plan.stop, len(rows), digest, size, events)


def register_shard(store: Store, plan: ShardPlan, entry: ShardEntry) -> None:
    """Add a committed shard to the manifest: the shard is on the store before the manifest names it."""
    with store.manifest_lock(), writing(store, MANIFEST_NAME):
        manifest = manifests.read_manifest(store)
        manifest.shards[plan.name] = entry
        manifests.write_manifest(store, manifest)


@dataclass
class Tally:
    """What happened to the items of a run (or of one shard, on Ray), and the rule that stops a broken run."""

    records: int = 0
    retried: int = 0
    skipped: int = 0
    unusable: int = 0
    """Skipped because their input cannot become a pair: not a sign of a bug, so not in the abort rule."""
    finished_items: int = 0
    first_failure: str = ""

    def add(self, outcome: ItemOutcome) -> None:
        self.finished_items += 1
        self.retried += sum(event.event == "retried" for event in outcome.events)
        if outcome.row is None:
            self.skipped += 1
            if outcome.events[-1].unusable:
                self.unusable += 1
            else:
                self.first_failure = self.first_failure or outcome.events[-1].describe()
        else:
            self.records += 1
        self.check_failure_rate()

    def merge(self, other: Tally) -> None:
        for name in ("records", "retried", "skipped", "unusable", "finished_items"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.first_failure = self.first_failure or other.first_failure
        self.check_failure_rate()

    def check_failure_rate(self) -> None:
        failed, tried = self.skipped - self.unusable, self.finished_items - self.unusable
        if failed >= ABORT_AFTER_FAILURES and failed * 2 > tried:
            raise GenerationError(
                f"{failed} of {tried} items failed every attempt; stopping. First reason: {self.first_failure}"
            )


@dataclass
class ShardCollector:
    """Collects outcomes per shard in the parent and commits each shard as soon as it is complete."""

    store: Store
    plans: list[ShardPlan]
    tally: Tally = field(default_factory=Tally)

    def __post_init__(self) -> None:
        self.plans = sorted(self.plans, key=lambda plan: plan.start)
        self.starts = [plan.start for plan in self.plans]
        self.outcomes: dict[int, list[ItemOutcome]] = {plan.number: [] for plan in self.plans}

    def add(self, outcome: ItemOutcome) -> None:
        self.tally.add(outcome)
        plan = self.plans[bisect.bisect_right(self.starts, outcome.index) - 1]
        bucket = self.outcomes[plan.number]
        bucket.append(outcome)
        if len(bucket) == plan.stop - plan.start:
            register_shard(self.store, plan, commit_shard(self.store, plan, bucket))
            del self.outcomes[plan.number]


def print_tracebacks(progress: Progress | None, events: list[ReportEvent]) -> None:
    """Show `--debug` tracebacks above the progress bar as items finish."""
    if progress is None:
        return
    for event in events:
        if event.traceback:
            progress.console.print(
                f"item {event.index}, attempt {event.attempt}: {event.describe()}", markup=False, highlight=False
            )


def execute_local(
    store: Store, plans: list[ShardPlan], spec: WorkerSpec, options: RunOptions, progress: Progress | None
) -> Tally:
    """Make every item of `plans` in worker processes here, committing each shard as soon as its items are in."""
    collector = ShardCollector(store, plans)
    task_id = progress.add_task(spec.domain, total=sum(p.stop - p.start for p in plans)) if progress else None

    def on_outcome(outcome: ItemOutcome) -> None:
        print_tracebacks(progress, outcome.events)
        collector.add(outcome)
        if progress is not None:
            progress.advance(task_id)

    pool = WorkerPool(spec, workers=options.workers, item_timeout=options.item_timeout)
    if progress is not None:
        pool.on_worker_lost = lambda message: progress.console.print(f"[yellow]{message}[/]")
    pool.run([index for plan in plans for index in range(plan.start, plan.stop)], on_outcome)
    return collector.tally


def finish(store: Store) -> None:
    """Once every shard is in: the preview and card, then sweep what interrupted writes left.

    All under the manifest lock: the jobs of an array that finish together take turns, and no job is mid-commit
    of a file the sweep would remove.
    """
    with store.manifest_lock():
        with writing(store, "the preview and dataset card"):
            write_preview(store)
            write_card(store)
        store.remove_temporaries()


def run(domain: Domain, config: Any, options: RunOptions, *, progress: Progress | None = None) -> RunSummary:
    """Make (or finish) the dataset of `options.num` pairs of `domain` in `options.out`.

    Re-running the same call keeps every intact shard and makes only the missing ones; a call with a
    different config into the same output raises `ResumeMismatchError` before any work, and a call while
    another run writes there raises `ConfigError`.
    """
    started = time.perf_counter()
    validate_options(options)
    generator = domain.make_generator(config)
    store = create_output(options.out)
    with store.run_lock(options.job):
        prepare_output(store)
        manifest = open_run(domain, config, options, generator, store)
        plans = select_shards(plan_shards(options.num, options.shard_size), options.job)
        todo, kept = shards_to_make(store, manifest, plans)
        spec = WorkerSpec(
            domain.name,
            domain.make_generator,
            config,
            domain.quality,
            options.seed,
            options.max_attempts,
            debug=debug_enabled(options.debug),
        )
        tally = Tally()
        if todo and options.backend == "ray":
            from datagen.ray_backend import execute_on_ray

            tally = execute_on_ray(store, todo, spec, domain.resources(config), options, progress)
        elif todo:
            tally = execute_local(store, todo, spec, options, progress)
        final = manifests.read_manifest(store)
        if final.complete and final.counts.written == 0:
            skipped = [line for line in final.report_lines() if line.event == "skipped"]
            raise GenerationError(
                f"every item failed every attempt; first reason: {skipped[0].describe() if skipped else 'unknown'}"
            )
        if final.complete:
            finish(store)
    return RunSummary(
        out=store.location,
        shards_made=len(todo),
        shards_kept=kept,
        records_made=tally.records,
        retried=tally.retried,
        skipped=tally.skipped,
        complete=final.complete,
        seconds=time.perf_counter() - started,
    )
