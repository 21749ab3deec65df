"""What a worker process does with one item: generate, gate, retry from derived seeds, encode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datagen.errors import UnusableItem
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
    events: list[dict[str, Any]] = field(default_factory=list)


def make_item(spec: WorkerSpec, generator: PairGenerator, index: int, first_attempt: int = 0) -> ItemOutcome:
    """Generate and gate one item, regenerating from derived seeds until it passes or attempts run out.

    Any exception from the domain counts as a failed attempt with its reason recorded: one bad item
    must not end a run of thousands. The runner aborts when most items fail, so a bug still surfaces.
    `UnusableItem` ends the item at once (another seed cannot help), as an event marked `"unusable": true`.
    Reasons and the record's texts pass through a `PathScrubber`: both are published.
    """
    scrubber = PathScrubber.for_config(dataclasses.asdict(spec.config))
    outcome = _attempts(spec, generator, index, first_attempt)
    for event in outcome.events:
        event["reason"] = scrubber.scrub(event["reason"])
    if outcome.row is not None:
        for key in ("description", "meta"):
            outcome.row[key] = scrubber.scrub(outcome.row[key])
        outcome.row["edits"] = scrubber.scrub_tree(outcome.row["edits"])
    return outcome


def _attempts(spec: WorkerSpec, generator: PairGenerator, index: int, first_attempt: int) -> ItemOutcome:
    """The attempts of `make_item`, from `first_attempt` on, until one passes or none is left."""
    events: list[dict[str, Any]] = []
    for attempt in range(first_attempt, spec.max_attempts):
        seed = item_seed(spec.run_seed, index, attempt)
        try:
            pair = generator(index, seed)
            spec.quality.check(pair)
        except UnusableItem as error:
            reason = f"{type(error).__name__}: {error}"
            events.append(
                {
                    "index": index,
                    "attempt": attempt,
                    "seed": seed,
                    "event": "skipped",
                    "reason": reason,
                    "unusable": True,
                }
            )
            return ItemOutcome(index, None, events)
        except Exception as error:  # noqa: BLE001 - recorded in the report, see docstring
            reason = f"{type(error).__name__}: {error}"
            events.append({"index": index, "attempt": attempt, "seed": seed, "event": "retried", "reason": reason})
            continue
        row = encode_pair(pair, domain=spec.domain, run_seed=spec.run_seed, index=index, seed=seed)
        return ItemOutcome(index, row, events)
    events[-1]["event"] = "skipped"
    return ItemOutcome(index, None, events)
