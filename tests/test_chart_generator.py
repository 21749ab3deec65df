"""The chart generator end to end: config checks, every kind at the asked size, determinism, the quality gate."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from chart_edit.domain import DOMAIN, ChartConfig, make_generator
from chart_edit.render import ChartRenderer
from chart_edit.spec import KINDS, ChartSpec
from datagen.errors import ConfigError, QualityRejected
from datagen.record import Pair
from datagen.registry import get_domain

SIZE = {"width": 320, "height": 240}


def fingerprint(pair: Pair) -> str:
    """sha256 over everything a pair holds, arrays included."""
    digest = hashlib.sha256()
    for array in (pair.civilian, pair.spy, pair.diff_mask):
        digest.update(np.ascontiguousarray(array).tobytes())
    record = {
        "boxes": pair.diff_boxes,
        "edits": [asdict(e) for e in pair.edits],
        "text": pair.description,
        "difficulty": pair.difficulty,
        "meta": pair.meta,
    }
    digest.update(json.dumps(record, sort_keys=True).encode())
    return digest.hexdigest()


def fingerprints_in_fresh_process(seeds: list[int]) -> list[str]:
    """Run in a spawned interpreter: nothing is shared with the test process but the code."""
    generator = make_generator(ChartConfig(**SIZE))
    return [fingerprint(generator(0, seed)) for seed in seeds]


def first_pair(generator, seeds: range) -> tuple[int, Pair]:
    """The first seed whose pair is not rejected (rejections are allowed but rare)."""
    for seed in seeds:
        try:
            return seed, generator(0, seed)
        except QualityRejected:
            continue
    raise AssertionError(f"every seed in {seeds} was rejected")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_at_the_asked_size_and_repeats_exactly(kind) -> None:
    config = ChartConfig(kinds=(kind,), **SIZE)
    seed, pair = first_pair(make_generator(config), range(100, 110))
    assert pair.civilian.shape == pair.spy.shape == (240, 320, 3)
    assert pair.civilian.dtype == np.uint8 and pair.diff_mask.shape == (240, 320)
    assert pair.meta["kind"] == kind
    assert fingerprint(make_generator(config)(0, seed)) == fingerprint(pair)


@pytest.mark.parametrize(("width", "height"), [(64, 64), (113, 201), (203, 115), (1003, 427)])
def test_awkward_sizes_give_exactly_that_many_pixels(width, height) -> None:
    """figsize * dpi must not round a width such as 113 down to 112."""
    _, pair = first_pair(make_generator(ChartConfig(kinds=("bar", "line"), width=width, height=height)), range(30))
    assert pair.civilian.shape == pair.spy.shape == (height, width, 3)


def test_pairs_are_identical_in_a_fresh_process_and_under_another_matplotlib_style() -> None:
    seeds = [3, 4, 5]
    local = make_generator(ChartConfig(**SIZE))
    with matplotlib.rc_context(
        {
            "lines.linewidth": 7.0,
            "font.size": 30,
            "text.antialiased": False,
            "patch.edgecolor": "red",
            "text.hinting": "none",
        }
    ):
        styled = [fingerprint(local(0, seed)) for seed in seeds]
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(fingerprints_in_fresh_process, seeds).result()
    assert styled == remote


def test_generated_pairs_pass_the_domain_quality_gate() -> None:
    generator = make_generator(ChartConfig(**SIZE))
    passed = 0
    for seed in range(40):
        try:
            DOMAIN.quality.check(generator(0, 1000 + seed))
        except QualityRejected:
            continue
        passed += 1
    assert passed >= 36


def test_pair_record_is_complete_and_its_meta_redraws_it_exactly() -> None:
    generator = make_generator(ChartConfig(**SIZE))
    renderer = ChartRenderer(**SIZE)
    for seed in range(200, 212):
        try:
            pair = generator(0, seed)
        except QualityRejected:
            continue
        assert pair.diff_mask.any() and pair.diff_boxes and len(pair.edits) == 2
        assert 0.0 <= pair.difficulty <= 1.0 and pair.description.endswith(".")
        meta = json.loads(json.dumps(pair.meta))
        civilian, spy = ChartSpec.from_json(meta["civilian"]), ChartSpec.from_json(meta["spy"])
        assert civilian.frame == spy.frame, "both images must share limits, bins and slots"
        assert np.array_equal(renderer.render(civilian), pair.civilian)
        assert np.array_equal(renderer.render(spy), pair.spy)


def test_domain_is_registered_and_its_config_is_json_friendly() -> None:
    assert get_domain("chart") is DOMAIN
    assert DOMAIN.config_type is ChartConfig
    saved = json.loads(json.dumps(asdict(ChartConfig())))
    assert saved["kinds"] == list(KINDS) and saved["changes"] == 2 and saved["tables"] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kinds": ("bar", "sunburst")}, "sunburst"),
        ({"kinds": ()}, "kinds"),
        ({"edit_kinds": ("explode",)}, "explode"),
        ({"changes": 0}, "changes"),
        ({"changes": 5}, "changes"),
        ({"width": 63}, "width"),
        ({"height": 4097}, "height"),
        ({"kinds": ("bar",), "edit_kinds": ("change_marker", "change_linestyle")}, "'bar'"),
        ({"tables": "/no/such/folder"}, "does not exist"),
    ],
)
def test_bad_config_fails_at_once_naming_the_value(options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        make_generator(ChartConfig(**{**SIZE, **options}))


def _write_tables(folder: Path) -> None:
    folder.mkdir()
    years = range(1995, 2025)
    rows = ["Year,North,South,East"] + [
        f"{y},{100 + 3 * i},{80 + (i * 7) % 23},{60 + (i * 5) % 31}" for i, y in enumerate(years)
    ]
    (folder / "revenue.csv").write_text("\n".join(rows) + "\n")
    (folder / "notes.csv").write_text("name,comment\nann,hello\nbo,bye\n")
    (folder / "tiny.csv").write_text("item,count\na,1\nb,2\n")


def test_user_tables_are_charted_and_bad_ones_reported(tmp_path) -> None:
    folder = tmp_path / "tables"
    _write_tables(folder)
    generator = make_generator(ChartConfig(kinds=("line", "bar", "heatmap"), tables=str(folder), **SIZE))
    reasons = {Path(error.source).name: error.reason for error in generator.skipped_inputs}
    assert sorted(reasons) == ["notes.csv", "tiny.csv"]
    assert "numeric" in reasons["notes.csv"] and "2 rows" in reasons["tiny.csv"]
    for seed in range(6):
        _, pair = first_pair(generator, range(10 * seed, 10 * seed + 10))
        assert pair.meta["civilian"]["table"]["source"].endswith("revenue.csv")
        assert DOMAIN.quality.check(pair) is None


def test_folder_without_a_usable_table_lists_every_reason(tmp_path) -> None:
    folder = tmp_path / "tables"
    _write_tables(folder)
    (folder / "revenue.csv").unlink()
    with pytest.raises(ConfigError) as caught:
        make_generator(ChartConfig(kinds=("histogram",), tables=str(folder), **SIZE))
    assert "notes.csv" in str(caught.value) and "tiny.csv" in str(caught.value)
    assert "histogram" in str(caught.value)
