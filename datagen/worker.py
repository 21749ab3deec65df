"""What a worker process does with one item: generate, gate, retry from derived seeds, encode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datagen.errors import QualityRejected, UnusableItem
from datagen.failures import error_fields, package_of
from datagen.manifest import ReportEvent
from datagen.public import PathScrubber
from datagen.quality import QualityGate
from datagen.record import encode_pair
from datagen.registry import PairGenerator
from datagen.seeding import item_seed


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; pickled once per worker process (functions travel by reference)."""

    domain: str
    make_generator: Callable[[Any], PairGenerator]
    config: Any
    quality: QualityGate
    run_seed: int
    max_attempts: int
    debug: bool = False
    """Put each failure's whole traceback into its report event (`--debug`, `VZERO_DEBUG=1`)."""


@dataclass(frozen=True)
class ItemTask:
    """One index to make, starting at `first_attempt` (above 0 after a worker died making it)."""

    index: int
    first_attempt: int


@dataclass
class ItemOutcome:
    """One index's result: its encoded row, or `None` when every attempt failed, plus its report events."""

    index: int
    row: dict[str, Any] | None
    events: list[ReportEvent] = field(default_factory=list)


def make_item(spec: WorkerSpec, generator: PairGenerator, index: int, first_attempt: int = 0) -> ItemOutcome:
    """Generate and gate one item, regenerating from derived seeds until it passes or attempts run out.

    Any exception from the domain counts as a failed attempt with its reason recorded: one bad item
    must not end a run of thousands. The runner aborts when most items fail, so a bug still surfaces, and
    the event names the domain's frame it came from (the whole traceback with `spec.debug`).
    `UnusableItem` ends the item at once (another seed cannot help), as an event marked `unusable`.
    Reasons and the record's texts pass through a `PathScrubber`: both are published.
    """
    scrubber = PathScrubber.for_config(dataclasses.asdict(spec.config))
    outcome = _attempts(spec, generator, index, first_attempt)
    for event in outcome.events:
        event.reason = scrubber.scrub(event.reason)
        if event.traceback is not None:
            event.traceback = scrubber.scrub(event.traceback)
    if outcome.row is not None:
        for key in ("description", "meta"):
            outcome.row[key] = scrubber.scrub(outcome.row[key])
        outcome.row["edits"] = scrubber.scrub_tree(outcome.row["edits"])
    return outcome


def _attempts(spec: WorkerSpec, generator: PairGenerator, index: int, first_attempt: int) -> ItemOutcome:
    """The attempts of `make_item`, from `first_attempt` on, until one passes or none is left."""
    events: list[ReportEvent] = []
    package = package_of(generator)
    for attempt in range(first_attempt, spec.max_attempts):
        seed = item_seed(spec.run_seed, index, attempt)
        try:
            pair = generator(index, seed)
            spec.quality.check(pair)
        except QualityRejected as error:
            # A rejection is the gate working, not a bug: its reason is the whole story.
            events.append(ReportEvent("retried", f"{type(error).__name__}: {error}", index, attempt, seed))
            continue
        except UnusableItem as error:
            fields = error_fields(error, package, debug=spec.debug)
            events.append(ReportEvent("skipped", index=index, attempt=attempt, seed=seed, unusable=True, **fields))
            return ItemOutcome(index, None, events)
        except Exception as error:  # noqa: BLE001 - recorded in the report, see docstring
            fields = error_fields(error, package, debug=spec.debug)
            events.append(ReportEvent("retried", index=index, attempt=attempt, seed=seed, **fields))
            continue
        row = encode_pair(pair, domain=spec.domain, run_seed=spec.run_seed, index=index, seed=seed)
        return ItemOutcome(index, row, events)
    events[-1].event = "skipped"
    return ItemOutcome(index, None, events)
