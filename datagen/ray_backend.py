"""`--backend ray`: the runner's shards as Ray tasks, on a cluster or on a Ray instance started here.

Each task makes one shard with the same `WorkerPool` the local backend uses (so a segfaulting or hung item
costs that item an attempt, never the shard), commits the shard to the store itself and returns its manifest
entry; the driver alone updates the manifest. A task whose process dies (killed, out of memory, its node lost)
is re-run by Ray, up to `TASK_RETRIES` times: items depend only on (config, run seed, index), so the re-run
writes the same bytes. Only the entries travel back to the driver, never the images.

A task's process keeps its pool between tasks, so a generator (Blender, a loaded source) starts once per
process, not once per shard.
"""

from __future__ import annotations

import atexit
import pickle
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datagen.errors import ConfigError, GenerationError
from datagen.manifest import ShardEntry
from datagen.pool import WorkerPool
from datagen.registry import WorkerResources
from datagen.runner import RunOptions, Tally, commit_shard, print_tracebacks, register_shard
from datagen.shards import ShardPlan
from datagen.store import Store
from datagen.worker import ItemOutcome, WorkerSpec

if TYPE_CHECKING:
    from rich.progress import Progress

TASK_RETRIES = 3
"""Re-runs of a shard task whose process died (Ray's `max_retries`); errors raised by our code are not retried."""
CONNECT_TIMEOUT_SECONDS = 10.0
ITEM_WORKERS_PER_TASK = 1
"""Item processes per task: Ray places tasks per CPU (or GPU), so parallelism comes from running many tasks."""


@dataclass
class ShardResult:
    """What a task sends back: the committed shard's manifest entry and what happened to its items."""

    entry: ShardEntry
    tally: Tally


_pool: tuple[bytes, WorkerPool] | None = None
"""This process's pool and the pickled spec it was started for (Ray reuses a process for task after task)."""


def pool_for(spec: WorkerSpec, item_timeout: float) -> WorkerPool:
    """The process's pool for `spec`, started on first use and kept for the next shard of the same run."""
    global _pool
    key = pickle.dumps((spec, item_timeout))
    if _pool is not None and _pool[0] == key:
        return _pool[1]
    if _pool is not None:
        _pool[1].stop()
    pool = WorkerPool(spec, workers=ITEM_WORKERS_PER_TASK, item_timeout=item_timeout)
    _pool = (key, pool)
    return pool


@atexit.register
def _stop_pool() -> None:
    if _pool is not None:
        _pool[1].stop()


def make_shard(spec: WorkerSpec, plan: ShardPlan, store: Store, item_timeout: float) -> ShardResult:
    """Body of one Ray task: make every item of `plan`, commit the shard, return its entry."""
    outcomes: list[ItemOutcome] = []
    tally = Tally()

    def on_outcome(outcome: ItemOutcome) -> None:
        tally.add(outcome)
        outcomes.append(outcome)

    pool_for(spec, item_timeout).run(list(range(plan.start, plan.stop)), on_outcome, keep_workers=True)
    return ShardResult(commit_shard(store, plan, outcomes), tally)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'vision-zero[ray]'") from None
    return ray


def connect(ray: Any, options: RunOptions) -> bool:
    """Join the cluster at `options.ray_address`, or start a local instance of `options.workers` CPUs.

    Returns whether this call started Ray (and so should shut it down). A Ray already initialised in this
    process (a notebook, a test) is used as it is.
    """
    if ray.is_initialized():
        return False
    if options.ray_address is not None:
        check_reachable(options.ray_address)
        try:
            ray.init(address=options.ray_address, log_to_driver=True)
        except ConnectionError as error:
            raise ConfigError(f"cannot reach the Ray cluster at {options.ray_address}: {error}") from error
        return True
    # A private instance for this run; its dashboard is left off (start a cluster with `ray start --head` for one).
    ray.init(num_cpus=options.workers, include_dashboard=False, log_to_driver=True)
    return True


def check_reachable(address: str) -> None:
    """Fail at once on a `HOST:PORT` nothing answers at: Ray itself retries such an address for minutes, silently.

    `auto` and `ray://` addresses are left to Ray, which reports those clearly.
    """
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as error:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address}: {error.strerror or error}; is `ray start --head` running "
            "there, and is this its GCS port (6379 by default)?"
        ) from None


def execute_on_ray(
    store: Store,
    plans: list[ShardPlan],
    spec: WorkerSpec,
    resources: WorkerResources,
    options: RunOptions,
    progress: Progress | None,
) -> Tally:
    """Make every shard of `plans` as a Ray task; register each in the manifest as it arrives."""
    ray = import_ray()
    started_here = connect(ray, options)
    try:
        check_resources(ray, spec.domain, resources, fatal=started_here or options.ray_address is None)
    except BaseException:
        if started_here:
            ray.shutdown()
        raise
    tally = Tally()
    items = sum(plan.stop - plan.start for plan in plans)
    task_id = progress.add_task(f"{spec.domain} (ray)", total=items) if progress else None
    remote = ray.remote(make_shard).options(
        name=f"vzero-{spec.domain}-shard",
        num_cpus=resources.cpus,
        num_gpus=resources.gpus,
        max_retries=TASK_RETRIES,
        retry_exceptions=False,
    )
    spec_ref = ray.put(spec)
    pending = {remote.remote(spec_ref, plan, store, options.item_timeout): plan for plan in plans}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            plan = pending.pop(done[0])
            result = shard_result(ray, done[0], plan)
            register_shard(store, plan, result.entry)
            tally.merge(result.tally)
            if progress is not None:
                print_tracebacks(progress, result.entry.report)
                progress.advance(task_id, plan.stop - plan.start)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
    return tally


def check_resources(ray: Any, domain: str, resources: WorkerResources, *, fatal: bool) -> None:
    """Refuse work no node of the cluster can ever take (a GPU task on CPU-only nodes would wait forever).

    On a cluster we joined, an autoscaler may still add such a node, so there it is a warning, not an error.
    """
    offered = ray.cluster_resources()
    missing = [
        f"{amount:g} {kind}"
        for kind, amount in (("CPU", resources.cpus), ("GPU", resources.gpus))
        if amount > 0 and offered.get(kind, 0.0) < amount
    ]
    if not missing:
        return
    message = f"each {domain} worker needs {' and '.join(missing)}, and no node of the Ray cluster has that"
    if fatal:
        raise ConfigError(message)
    print(f"warning: {message}; its tasks wait until such a node joins (an autoscaler may add one)", file=sys.stderr)


def shard_result(ray: Any, ref: Any, plan: ShardPlan) -> ShardResult:
    """The task's result; our own errors come back as themselves, a task that kept dying as `GenerationError`."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = error.cause
        if isinstance(cause, Exception):
            raise cause from None
        raise GenerationError(f"shard {plan.name} failed on Ray: {error}") from None
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as error:
        raise GenerationError(
            f"shard {plan.name}: its Ray task died {TASK_RETRIES + 1} times ({type(error).__name__}); "
            "finished shards are kept; re-run the same command to resume"
        ) from None
