"""The contract every domain keeps, as a test kit: run it on your own domain before you publish its pairs.

    from datagen.testing import check_domain
    from my_shapes.domain import DOMAIN, ShapesConfig

    def test_my_domain_keeps_the_contract(tmp_path):
        check_domain(DOMAIN, ShapesConfig(size=96), num=3, out=tmp_path / "run")

or, for an installed domain, `vzero check-domain NAME --set key=value`. It checks, for `num` indices:
- the config: a dataclass whose every field has a default and a docstring (its help), JSON-serialisable;
- determinism: the same (config, index, seed) gives the same record bytes, from the same generator and a new one;
- the quality gate: every index yields a pair passing `domain.quality` within the runner's attempts;
- the record: images of one size and dtype, a bool mask, boxes inside the image, `Edit`s of strings, at least one
  edit, a one-sentence description, a finite difficulty in [0, 1], JSON-serialisable `meta`, the Parquet schema;
- end to end: a short run in worker processes whose folder validates, loads with `datagen.loading.load_pairs`, and
  holds byte for byte the records made here in this process.
Every failure raises `ContractError` (an `AssertionError`, so pytest shows it as a failed test) naming the check.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from datagen.config_fields import config_fields
from datagen.errors import QualityRejected, VzeroError
from datagen.features import PAIR_FEATURES
from datagen.reading import iter_rows
from datagen.record import Edit, Pair, encode_pair
from datagen.registry import Domain
from datagen.runner import RunOptions, run
from datagen.seeding import item_seed
from datagen.validate import validate_dataset
from datagen.worker import WorkerSpec, make_item

ATTEMPTS = 4
"""Attempts per index, as the runner allows by default."""
COMPARED = (
    "id",
    "domain",
    "civilian",
    "spy",
    "diff_mask",
    "diff_boxes",
    "edits",
    "description",
    "difficulty",
    "meta",
    "seed",
)


class ContractError(AssertionError):
    """A domain breaks the contract; the message names the check and the index."""


@dataclass
class ContractReport:
    """What `check_domain` verified."""

    domain: str
    indices: int
    attempts_rejected: int = 0
    """Attempts the quality gate turned down on the way (allowed: the runner regenerates them)."""
    run_records: int = 0
    checks: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{self.domain}: {check}" for check in self.checks]


def check_domain(
    domain: Domain, config: Any, *, num: int = 3, seed: int = 0, workers: int = 1, out: Path | None = None
) -> ContractReport:
    """Check `domain` with `config` on indices `0 .. num-1` (see the module docstring); the report of what passed.

    Args:
        domain: the domain under test, e.g. `my_shapes.domain.DOMAIN`.
        config: a small instance of `domain.config_type` (tiny images keep the check fast).
        num: indices to check and pairs in the end-to-end run.
        seed: the run seed.
        workers: worker processes of the end-to-end run.
        out: an empty or missing folder for the end-to-end run (default: a temporary folder, removed after).

    Raises:
        ContractError: naming the first broken rule.
    """
    report = ContractReport(domain.name, num)
    _check_config(domain, config, report)
    # The run goes first: in-process generation may import a backend (Blender) whose import changes sys.path,
    # which worker processes started afterwards would inherit.
    written = _run_rows(domain, config, num=num, seed=seed, workers=workers, out=out)
    generator = domain.make_generator(config)
    if not isinstance(getattr(generator, "input_digest", None), str):
        raise ContractError(f"{domain.name}: the generator's input_digest must be a string ('' when it reads none)")
    if not isinstance(getattr(generator, "skipped_inputs", None), (list, tuple)):
        raise ContractError(f"{domain.name}: the generator's skipped_inputs must be a list (empty when none)")
    rows: dict[int, dict[str, Any]] = {}
    for index in range(num):
        pair, attempt = _passing_pair(domain, generator, index, seed, report)
        _check_pair(domain.name, index, pair)
        item = item_seed(seed, index, attempt)
        rows[index] = encode_pair(pair, domain=domain.name, run_seed=seed, index=index, seed=item)
        _check_row(domain.name, index, rows[index])
        again = encode_pair(generator(index, item), domain=domain.name, run_seed=seed, index=index, seed=item)
        if again != rows[index]:
            raise ContractError(f"{domain.name}: index {index} gave different bytes when made again with its seed")
    # A second generator only once the first is done with: some hold a process-wide session (Blender).
    del generator
    spec = WorkerSpec(domain.name, domain.make_generator, config, domain.quality, seed, ATTEMPTS)
    fresh = domain.make_generator(config)
    for index in range(num):
        made = make_item(spec, fresh, index).row
        if made is None or any(made[key] != rows[index][key] for key in ("civilian", "spy", "diff_mask", "seed")):
            raise ContractError(f"{domain.name}: index {index} differs when made by a new generator from its seed")
        different = [key for key in COMPARED if written[index][key] != _comparable(made)[key]]
        if different:
            raise ContractError(
                f"{domain.name}: index {index} made in a worker process differs from this process in {different}"
            )
    report.checks += [
        "config: a dataclass of documented, defaulted, JSON-serialisable options",
        f"{num} indices pass the quality gate ({report.attempts_rejected} attempts rejected on the way)",
        "records: images, mask, boxes, edits, description, difficulty, JSON meta and the Parquet schema",
        "determinism: the same seed gives the same bytes from the same and from a new generator",
        f"end to end: {num} pairs in worker processes, validated, loaded, same bytes as here",
    ]
    report.run_records = num
    return report


def _check_config(domain: Domain, config: Any, report: ContractReport) -> None:
    if not isinstance(config, domain.config_type):
        raise ContractError(f"{domain.name}: config is a {type(config).__name__}, not a {domain.config_type.__name__}")
    try:
        fields = config_fields(domain.config_type)
    except TypeError as error:
        raise ContractError(f"{domain.name}: {error}") from error
    undocumented = [item.name for item in fields if not item.help]
    if undocumented:
        raise ContractError(f"{domain.name}: config fields without a docstring (their help): {undocumented}")
    try:
        json.dumps(dataclasses.asdict(config), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ContractError(
            f"{domain.name}: the config is not JSON-serialisable (the manifest saves it): {error}"
        ) from error


def _passing_pair(domain: Domain, generator: Any, index: int, seed: int, report: ContractReport) -> tuple[Pair, int]:
    """The first attempt's pair that the quality gate accepts, as the runner would find it."""
    reasons = []
    for attempt in range(ATTEMPTS):
        try:
            pair = generator(index, item_seed(seed, index, attempt))
            domain.quality.check(pair)
        except QualityRejected as error:
            report.attempts_rejected += 1
            reasons.append(str(error))
            continue
        if not isinstance(pair, Pair):
            raise ContractError(f"{domain.name}: index {index}: the generator returned {type(pair).__name__}, not Pair")
        return pair, attempt
    raise ContractError(f"{domain.name}: index {index} failed the quality gate {ATTEMPTS} times: {reasons}")


def _check_pair(name: str, index: int, pair: Pair) -> None:
    def fail(problem: str) -> ContractError:
        return ContractError(f"{name}: index {index}: {problem}")

    for label, image in (("civilian", pair.civilian), ("spy", pair.spy)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise fail(f"{label} must be an [H, W, 3] uint8 array")
    if pair.spy.shape != pair.civilian.shape:
        raise fail(f"spy is {pair.spy.shape} but civilian is {pair.civilian.shape}")
    height, width = pair.civilian.shape[:2]
    if pair.diff_mask.dtype != bool or pair.diff_mask.shape != (height, width):
        raise fail(f"diff_mask must be a [{height}, {width}] bool array")
    for box in pair.diff_boxes:
        x0, y0, x1, y1 = (int(value) for value in box)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise fail(f"box {list(box)} is not inside the {width}x{height} image with x0 < x1, y0 < y1")
    if not pair.edits or not all(isinstance(edit, Edit) for edit in pair.edits):
        raise fail("edits must be a non-empty list of datagen.record.Edit")
    for edit in pair.edits:
        if not all(isinstance(value, str) for value in dataclasses.astuple(edit)) or not edit.op or not edit.target:
            raise fail(f"{edit} must hold strings, with an op and a target")
    if not isinstance(pair.description, str) or not pair.description.strip() or "\n" in pair.description:
        raise fail(f"description must be one non-empty sentence, got {pair.description!r}")
    if not isinstance(pair.difficulty, (int, float)) or not math.isfinite(pair.difficulty):
        raise fail(f"difficulty must be a finite number, got {pair.difficulty!r}")
    if not 0.0 <= pair.difficulty <= 1.0:
        raise fail(f"difficulty must be in [0, 1], got {pair.difficulty}")
    try:
        text = json.dumps(pair.meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise fail(f"meta is not JSON-serialisable: {error}") from error
    if json.loads(text) != json.loads(json.dumps(pair.meta, sort_keys=True)):
        raise fail("meta does not survive a JSON round trip unchanged")


def _check_row(name: str, index: int, row: dict[str, Any]) -> None:
    try:
        pa.Table.from_pylist([row], schema=PAIR_FEATURES.arrow_schema)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise ContractError(f"{name}: index {index}: the record does not fit the pair schema: {error}") from error


def _run_rows(
    domain: Domain, config: Any, *, num: int, seed: int, workers: int, out: Path | None
) -> dict[int, dict[str, Any]]:
    """A short run in worker processes whose folder must validate and load; its records by index."""
    from datagen.loading import load_pairs

    with tempfile.TemporaryDirectory(prefix="vzero-contract-") as scratch:
        folder = out or Path(scratch) / "run"
        try:
            summary = run(domain, config, RunOptions(out=folder, num=num, seed=seed, workers=workers, shard_size=num))
            validate_dataset(folder)
            loaded = load_pairs(folder)
        except VzeroError as error:
            raise ContractError(f"{domain.name}: the end-to-end run failed: {error}") from error
        made = {int(row["id"].rsplit("-", 1)[1]): row for row in iter_rows(folder, list(COMPARED))}
    if summary.skipped or len(loaded) != num or sorted(made) != list(range(num)):
        raise ContractError(f"{domain.name}: the end-to-end run made {len(loaded)} of {num} pairs")
    return made


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """An encoded row as it reads back from Parquet (image structs and float32 difficulty)."""
    return {**row, "difficulty": float(np.float32(row["difficulty"]))}
