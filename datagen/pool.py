"""Worker processes that each build a generator once, with the parent knowing which item every worker is on.

`concurrent.futures` can only fail everything in flight when one process dies, and cannot time out one
task. The code our domains run (Blender, OpenCV, a user's own files) can segfault or hang on one odd
item, so here a dead or hung worker costs that one item an attempt, is replaced, and the run goes on.

Policy for the item a worker was making when it died: the same attempt is tried once more (a worker
killed from outside, or by the OOM killer, must not change the dataset's bytes); a second death on that
attempt, or a timeout, counts the attempt as failed and the next derived seed is used; after the last
attempt the item is skipped and reported like any other failed item.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from datagen.errors import GenerationError
from datagen.failures import error_fields, package_of
from datagen.manifest import ReportEvent
from datagen.seeding import item_seed
from datagen.worker import ItemOutcome, ItemTask, WorkerSpec, make_item

ITEMS_QUEUED_PER_WORKER = 2
"""Items sent ahead to a worker, so that it never waits for the parent between items."""
MAX_DEATHS_WITHOUT_PROGRESS = 8
"""Workers that may die in a row, none finishing an item, before the run stops: that is not one bad item."""
STOP_GRACE_SECONDS = 5.0


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Body of a worker process: build the generator, then answer item tasks until told to stop.

    Ctrl-C reaches every process of the terminal's group; only the parent acts on it (it stops the
    workers), so workers ignore SIGINT rather than die with a traceback each.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        generator = spec.make_generator(spec.config)
    except Exception as error:  # noqa: BLE001 - sent to the parent, which stops the run with it
        fields = error_fields(error, package_of(spec.make_generator), debug=spec.debug)
        conn.send(("init_failed", ReportEvent("init_failed", **fields).describe()))
        return
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(("outcome", make_item(spec, generator, task.index, task.first_attempt)))


@dataclass
class Worker:
    """The parent's view of one worker process."""

    process: BaseProcess
    conn: Connection
    ready: bool = False
    assigned: deque[ItemTask] = field(default_factory=deque)
    since: float = field(default_factory=time.monotonic)
    """When its current item (or its start-up, before `ready`) began."""


class WorkerPool:
    """`workers` processes making items; `run` feeds them tasks and hands each finished outcome back."""

    def __init__(self, spec: WorkerSpec, *, workers: int, item_timeout: float) -> None:
        self.spec = spec
        self.size = workers
        self.item_timeout = item_timeout
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[Worker] = []
        self.pending: deque[ItemTask] = deque()
        self.deaths: Counter[tuple[int, int]] = Counter()
        self.crash_events: dict[int, list[ReportEvent]] = {}
        self.deaths_in_a_row = 0
        self.on_worker_lost: Callable[[str], None] = lambda message: None

    def run(self, indices: list[int], on_outcome: Callable[[ItemOutcome], None], *, keep_workers: bool = False) -> None:
        """Make every index, calling `on_outcome` in the parent as each item finishes (in any order).

        With `keep_workers`, the workers stay up for the next call (a Ray task's process makes shard after shard
        without starting a generator for each); `stop` ends them. On any exception they are stopped at once.
        """
        self.pending.extend(ItemTask(index, 0) for index in indices)
        try:
            self.workers += [self.start_worker() for _ in range(self.size - len(self.workers))]
            while self.pending or any(worker.assigned for worker in self.workers):
                self.dispatch()
                self.wait_and_collect(on_outcome)
        except BaseException:
            self.pending.clear()
            self.stop()
            raise
        if not keep_workers:
            self.stop()

    def start_worker(self) -> Worker:
        parent_end, child_end = self.context.Pipe()
        process = self.context.Process(target=worker_main, args=(self.spec, child_end), daemon=True)
        process.start()
        child_end.close()
        return Worker(process, parent_end)

    def dispatch(self) -> None:
        for worker in self.workers:
            while worker.ready and self.pending and len(worker.assigned) < ITEMS_QUEUED_PER_WORKER:
                if not worker.assigned:
                    worker.since = time.monotonic()
                task = self.pending.popleft()
                worker.assigned.append(task)
                worker.conn.send(task)

    def wait_and_collect(self, on_outcome: Callable[[ItemOutcome], None]) -> None:
        busy = [worker for worker in self.workers if worker.assigned or not worker.ready]
        next_deadline = min((worker.since + self.item_timeout for worker in busy), default=None)
        timeout = None if next_deadline is None else max(0.0, next_deadline - time.monotonic())
        wait([worker.conn for worker in self.workers] + [worker.process.sentinel for worker in self.workers], timeout)
        for worker in list(self.workers):
            lost = self.receive(worker, on_outcome)
            if lost is None and not worker.process.is_alive():
                lost = f"died (exit code {worker.process.exitcode})"
            busy = bool(worker.assigned) or not worker.ready
            if lost is None and busy and time.monotonic() - worker.since > self.item_timeout:
                lost = f"timed out after {self.item_timeout:g} s"
            if lost is not None:
                self.replace(worker, lost, on_outcome)

    def receive(self, worker: Worker, on_outcome: Callable[[ItemOutcome], None]) -> str | None:
        """Read every message the worker has sent; a reason if its pipe broke.

        Only the pipe's errors mean the worker is gone: an error raised while handling an outcome (the parent's
        own write failing) propagates, never to be mistaken for a dead worker.
        """
        while True:
            try:
                if not worker.conn.poll():
                    return None
                kind, payload = worker.conn.recv()
            except (EOFError, OSError):
                worker.process.join(STOP_GRACE_SECONDS)
                return f"died (exit code {worker.process.exitcode})"
            if kind == "init_failed":
                raise GenerationError(f"a {self.spec.domain} worker could not start: {payload}")
            if kind == "ready":
                worker.ready = True
                continue
            task = worker.assigned.popleft()
            worker.since = time.monotonic()
            self.deaths_in_a_row = 0
            payload.events[:0] = self.crash_events.pop(task.index, [])
            on_outcome(payload)

    def replace(self, worker: Worker, reason: str, on_outcome: Callable[[ItemOutcome], None]) -> None:
        """Retire a dead or hung worker, charge its current item, requeue the rest and start a fresh one."""
        kill(worker)
        self.workers.remove(worker)
        self.deaths_in_a_row += 1
        if self.deaths_in_a_row > MAX_DEATHS_WITHOUT_PROGRESS:
            raise GenerationError(
                f"{self.deaths_in_a_row} {self.spec.domain} worker processes in a row ended without finishing "
                f"an item; last one {reason}"
            )
        self.on_worker_lost(f"a worker process {reason}; starting another")
        if worker.assigned:
            current = worker.assigned.popleft()
            self.pending.extendleft(reversed(worker.assigned))
            self.charge(current, reason, timed_out=reason.startswith("timed out"), on_outcome=on_outcome)
        self.workers.append(self.start_worker())

    def charge(
        self, task: ItemTask, reason: str, *, timed_out: bool, on_outcome: Callable[[ItemOutcome], None]
    ) -> None:
        """Record the lost attempt and requeue the item, or skip it when its attempts are used up."""
        seed = item_seed(self.spec.run_seed, task.index, task.first_attempt)
        self.deaths[task.index, task.first_attempt] += 1
        attempt_failed = timed_out or self.deaths[task.index, task.first_attempt] >= 2
        event = ReportEvent(
            "retried", f"worker process {reason} while making this item", task.index, task.first_attempt, seed
        )
        events = self.crash_events.setdefault(task.index, [])
        events.append(event)
        next_attempt = task.first_attempt + 1 if attempt_failed else task.first_attempt
        if next_attempt < self.spec.max_attempts:
            self.pending.appendleft(ItemTask(task.index, next_attempt))
            return
        event.event = "skipped"
        on_outcome(ItemOutcome(task.index, None, self.crash_events.pop(task.index)))

    def stop(self) -> None:
        """Let idle workers exit on their own (clean teardown of e.g. Blender); kill busy ones at once.

        Busy workers are only left when the run is being abandoned (Ctrl-C, an abort), where waiting
        for their items would only delay the exit.
        """
        for worker in self.workers:
            if worker.ready and not worker.assigned and worker.process.is_alive():
                worker.conn.send(None)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self.workers:
            if worker.ready and not worker.assigned:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            kill(worker)
        self.workers = []


def kill(worker: Worker) -> None:
    """End the process for sure and reap it (so its CPU time is counted and no zombie is left)."""
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join()
    worker.conn.close()
