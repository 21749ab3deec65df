"""Chart perturbations on real renders: each edit is local, visible, and recorded exactly as it was made."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from chart_edit.domain import QUALITY
from chart_edit.perturb import PERTURBATIONS, Change, describe, perturb
from chart_edit.render import ChartRenderer
from chart_edit.scene import Primitive, footprint, scene_changes
from chart_edit.spec import (
    KINDS,
    ChartSpec,
    category_label_shown,
    legend_entries,
    make_spec,
    shape_problem,
    with_shared_frame,
)
from chart_edit.style import color_name, sample_style
from chart_edit.table import Table
from chart_edit.wording import next_label, reword
from datagen.masks import boxes_from_mask, difference_mask, dilate
from datagen.record import Pair

WIDTH, HEIGHT = 400, 300
YEARS = tuple(str(year) for year in range(2017, 2024))


def _table(kind: str) -> Table:
    """A hand-made table of the shape `kind` draws; values from a fixed generator, so every run is the same."""
    rng = np.random.default_rng(sum(map(ord, kind)))
    if kind in ("histogram", "box"):
        samples = tuple(f"S{i:02d}" for i in range(1, 41))
        rows = [np.round(rng.normal(50 + 12 * s, 8, size=40), 1) for s in range(3 if kind == "box" else 1)]
        return Table(
            "Delivery times per courier",
            "Delivery",
            samples,
            ("Ann", "Bo", "Cy")[: len(rows)],
            tuple(tuple(map(float, row)) for row in rows),
            "Delivery time",
            "min",
            "test",
        )
    if kind in ("pie", "donut"):
        return Table(
            "Fruit sales, 2023",
            "Fruit",
            ("Apples", "Pears", "Plums", "Cherries", "Figs"),
            ("Sales",),
            ((34.0, 21.0, 15.0, 18.0, 12.0),),
            "Sales",
            "t",
            "test",
        )
    if kind == "scatter":
        x = np.round(rng.uniform(10, 90, size=14), 1)
        y = np.round(0.8 * x + rng.normal(0, 8, size=14), 1)
        return Table(
            "Price and demand",
            "Shop",
            tuple(f"Shop {i}" for i in range(1, 15)),
            ("Price", "Demand"),
            (tuple(map(float, x)), tuple(map(float, y))),
            "Value",
            "",
            "test",
        )
    series = ("North", "South", "East")[: 1 if kind in ("bar", "barh") else 3]
    rows = [tuple(map(float, np.round(rng.uniform(40, 160, size=len(YEARS)), 1))) for _ in series]
    return Table("Annual revenue by region", "Year", YEARS, series, tuple(rows), "Revenue", "USD m", "test")


def civilian_spec(kind: str, seed: int) -> ChartSpec:
    """A spec whose style shows everything an edit may target: title, axis labels, markers, a legend."""
    table = _table(kind)
    assert shape_problem(kind, table) is None
    rng = np.random.default_rng(seed)
    count = len(table.series_names)
    style = sample_style(
        rng,
        num_colors=8 if kind in ("pie", "donut") else count,
        num_series=count,
        value_labels_fit=True,
        need_markers=True,
    )
    style = replace(style, show_title=True, markers=("circle", "square", "triangle")[:count])
    spec = make_spec(kind, table, style, rng)
    labels = {"value_label": spec.value_label or "Revenue (USD m)", "category_label": spec.category_label or "Year"}
    return replace(spec, **labels)


def apply_once(name: str, kind: str) -> tuple[ChartSpec, ChartSpec, Change]:
    """The civilian and spy specs (shared frame) of the first seed where `name` applies to `kind`."""
    for seed in range(40):
        civilian = civilian_spec(kind, seed)
        change = PERTURBATIONS[name].apply(civilian, np.random.default_rng(seed), frozenset())
        if change is not None:
            first, second = with_shared_frame([civilian, change.spec])
            return first, second, change
    raise AssertionError(f"{name} never applied to a {kind} chart")


CASES = [
    ("change_value", "bar"),
    ("change_value", "line"),
    ("change_value", "pie"),
    ("change_value", "scatter"),
    ("change_value", "histogram"),
    ("change_value", "box"),
    ("change_value", "heatmap"),
    ("swap_values", "grouped_bar"),
    ("swap_values", "donut"),
    ("swap_labels", "barh"),
    ("swap_labels", "heatmap"),
    ("drop_category", "line"),
    ("drop_category", "pie"),
    ("add_category", "stacked_bar"),
    ("add_category", "scatter"),
    ("swap_series", "grouped_bar"),
    ("swap_series", "box"),
    ("edit_title", "bar"),
    ("edit_axis_label", "barh"),
    ("edit_tick_label", "line"),
    ("recolor", "area"),
    ("recolor", "donut"),
    ("change_marker", "line"),
    ("change_linestyle", "line"),
    ("reorder_legend", "stacked_bar"),
]


def test_every_perturbation_is_covered_on_a_kind_it_applies_to() -> None:
    assert {name for name, _ in CASES} == set(PERTURBATIONS)
    for name, kind in CASES:
        assert kind in PERTURBATIONS[name].kinds


@pytest.fixture(scope="module")
def renderer() -> ChartRenderer:
    return ChartRenderer(WIDTH, HEIGHT)


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_perturbation_changes_pixels_only_where_its_marks_are(renderer, name, kind) -> None:
    civilian, spy, change = apply_once(name, kind)
    civilian_pixels, spy_pixels = renderer.render_pair(civilian, spy)
    mask = difference_mask(civilian_pixels, spy_pixels, 0)
    pair = Pair(civilian_pixels, spy_pixels, mask, boxes_from_mask(mask), [change.edit], describe([change]), 0.5)
    QUALITY.check(pair)
    # Direct check: every changed pixel lies on a primitive the edit changed (plus antialiasing).
    scenes = renderer.scene(civilian), renderer.scene(spy)
    changed = scene_changes(*scenes)
    assert changed
    allowed = np.zeros((HEIGHT, WIDTH), bool)
    for scene in scenes:
        for key in changed & scene.keys():
            allowed |= _footprint_mask(renderer, scene[key])
    assert not (mask & ~dilate(allowed, 1)).any()
    strong = np.abs(civilian_pixels.astype(int) - spy_pixels.astype(int)).max(axis=2) >= 60
    assert strong.sum() >= 20, "the change should be clearly visible, not a faint shift"


def _footprint_mask(renderer: ChartRenderer, primitive: Primitive) -> np.ndarray:
    """Pixels (rows top-down) of the conservative footprint `render_pair` relies on."""
    mask = np.zeros((HEIGHT, WIDTH), bool)
    for x0, y0, x1, y1 in footprint(primitive, renderer._label_box):
        rows = slice(max(0, int(HEIGHT - y1) - 1), max(0, int(HEIGHT - y0) + 1))
        mask[rows, max(0, int(x0) - 1) : max(0, int(x1) + 1)] = True
    return mask


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_edit_record_matches_the_specs_and_the_description(name, kind) -> None:
    civilian, spy, change = apply_once(name, kind)
    edit = change.edit
    assert edit.op == name
    CHECKS[name](civilian, spy, edit)
    sentence = describe([change])
    assert sentence[0].isupper() and sentence.endswith(".")
    for mention in MENTIONS.get(name, lambda e: (e.before, e.after))(edit):
        assert mention in sentence, (mention, sentence)


def _one_changed_cell(civilian: ChartSpec, spy: ChartSpec) -> tuple[float, float]:
    cells = [
        (a, b) for row_a, row_b in zip(civilian.table.values, spy.table.values) for a, b in zip(row_a, row_b) if a != b
    ]
    assert len(cells) == 1
    return cells[0]


def _check_change_value(civilian, spy, edit) -> None:
    old, new = _one_changed_cell(civilian, spy)
    assert float(edit.before) == pytest.approx(old) and float(edit.after) == pytest.approx(new)


def _labelled_numbers(text: str) -> list[tuple[str, float]]:
    """`'2019': 12.5, '2020': 3` -> [("2019", 12.5), ("2020", 3.0)]."""
    return [(label, float(number)) for label, number in re.findall(r"'([^']*)': (\S+?)(?:,|$)", text)]


def _check_swap_values(civilian, spy, edit) -> None:
    ((row_a, row_b),) = [(a, b) for a, b in zip(civilian.table.values, spy.table.values) if a != b]
    i, j = [k for k in range(len(row_a)) if row_a[k] != row_b[k]]
    assert (row_b[i], row_b[j]) == (row_a[j], row_a[i])
    a, b = civilian.table.categories[i], civilian.table.categories[j]
    assert _labelled_numbers(edit.before) == [(a, row_a[i]), (b, row_a[j])]
    assert _labelled_numbers(edit.after) == [(a, row_b[i]), (b, row_b[j])]


def _check_swap_labels(civilian, spy, edit) -> None:
    before, after = civilian.table.categories, spy.table.categories
    i, j = [k for k in range(len(before)) if before[k] != after[k]]
    assert (after[i], after[j]) == (before[j], before[i])
    assert edit.before == f"'{before[i]}', '{before[j]}'" and edit.after == f"'{before[j]}', '{before[i]}'"
    assert spy.table.values == civilian.table.values


def _check_drop_category(civilian, spy, edit) -> None:
    (gone,) = set(civilian.table.categories) - set(spy.table.categories)
    assert len(spy.table.categories) == len(civilian.table.categories) - 1
    assert f"'{gone}'" in edit.target and edit.after == "(none)"
    index = civilian.table.categories.index(gone)
    shown = [float(part.split()[-1]) for part in edit.before.split(", ")]
    assert shown == [row[index] for row in civilian.table.values]


def _check_add_category(civilian, spy, edit) -> None:
    assert spy.table.categories[:-1] == civilian.table.categories
    new = spy.table.categories[-1]
    assert f"'{new}'" in edit.target and edit.before == "(none)"
    shown = [float(part.split()[-1]) for part in edit.after.split(", ")]
    assert shown == [row[-1] for row in spy.table.values]


def _check_swap_series(civilian, spy, edit) -> None:
    names = civilian.table.series_names
    a, b = [names.index(n.strip("'")) for n in edit.before.split(", ")]
    assert spy.table.values[a] == civilian.table.values[b] and spy.table.values[b] == civilian.table.values[a]
    assert edit.after == f"'{names[b]}', '{names[a]}'"


def _check_edit_title(civilian, spy, edit) -> None:
    assert edit.before in civilian.title and edit.before != edit.after
    assert spy.title == civilian.title.replace(edit.before, edit.after, 1)


def _check_edit_axis_label(civilian, spy, edit) -> None:
    (field,) = [f for f in ("value_label", "category_label") if getattr(civilian, f) != getattr(spy, f)]
    assert getattr(spy, field) == getattr(civilian, field).replace(edit.before, edit.after, 1)


def _check_edit_tick_label(civilian, spy, edit) -> None:
    (index,) = [i for i, (a, b) in enumerate(zip(civilian.table.categories, spy.table.categories)) if a != b]
    assert (civilian.table.categories[index], spy.table.categories[index]) == (edit.before, edit.after)


def _check_recolor(civilian, spy, edit) -> None:
    (index,) = [i for i, (a, b) in enumerate(zip(civilian.style.colors, spy.style.colors)) if a != b]
    assert (civilian.style.colors[index], spy.style.colors[index]) == (edit.before, edit.after)
    assert color_name(edit.before) != color_name(edit.after)


def _check_change_marker(civilian, spy, edit) -> None:
    (index,) = [i for i, (a, b) in enumerate(zip(civilian.style.markers, spy.style.markers)) if a != b]
    assert (civilian.style.markers[index], spy.style.markers[index]) == (edit.before, edit.after)


def _check_change_linestyle(civilian, spy, edit) -> None:
    (index,) = [i for i, (a, b) in enumerate(zip(civilian.style.linestyles, spy.style.linestyles)) if a != b]
    assert (civilian.style.linestyles[index], spy.style.linestyles[index]) == (edit.before, edit.after)


def _check_reorder_legend(civilian, spy, edit) -> None:
    assert edit.before == ", ".join(legend_entries(civilian)) and edit.after == ", ".join(legend_entries(spy))
    assert sorted(legend_entries(civilian)) == sorted(legend_entries(spy)) and edit.before != edit.after


CHECKS = {
    "change_value": _check_change_value,
    "swap_values": _check_swap_values,
    "swap_labels": _check_swap_labels,
    "drop_category": _check_drop_category,
    "add_category": _check_add_category,
    "swap_series": _check_swap_series,
    "edit_title": _check_edit_title,
    "edit_axis_label": _check_edit_axis_label,
    "edit_tick_label": _check_edit_tick_label,
    "recolor": _check_recolor,
    "change_marker": _check_change_marker,
    "change_linestyle": _check_change_linestyle,
    "reorder_legend": _check_reorder_legend,
}
MENTIONS = {
    "swap_values": lambda e: [f"{v:g}" for _, v in _labelled_numbers(e.before)],
    "swap_labels": lambda e: [v.strip("'") for v in e.before.split(", ")],
    "drop_category": lambda e: [e.before, e.target.split("'")[1]],
    "add_category": lambda e: [e.after, e.target.split("'")[1]],
    "swap_series": lambda e: [v.strip("'") for v in e.before.split(", ")],
    "recolor": lambda e: [color_name(e.before), color_name(e.after)],
    "reorder_legend": lambda e: [a for a, b in zip(e.before.split(", "), e.after.split(", ")) if a != b],
}


def test_hidden_title_cannot_be_edited() -> None:
    spec = replace(civilian_spec("bar", 0), title="")
    assert PERTURBATIONS["edit_title"].apply(spec, np.random.default_rng(0), frozenset()) is None


def test_undrawn_category_label_is_never_renamed() -> None:
    """With 24 categories only every other label is drawn; renaming an undrawn one would be invisible."""
    spec = civilian_spec("line", 0)
    years = tuple(str(y) for y in range(1990, 2014))
    rows = tuple(tuple(float(40 + (i * 7 + s * 13) % 50) for i in range(len(years))) for s in range(3))
    spec = with_shared_frame([replace(spec, table=replace(spec.table, categories=years, values=rows))])[0]
    assert not all(category_label_shown(spec, i) for i in range(len(years)))
    for seed in range(20):
        change = PERTURBATIONS["edit_tick_label"].apply(spec, np.random.default_rng(seed), frozenset())
        assert category_label_shown(spec, years.index(change.edit.before))


def test_touched_targets_are_left_alone_by_later_edits() -> None:
    spec = civilian_spec("bar", 3)
    touched = frozenset(f"cat:{label}" for label in spec.table.categories[1:])
    change = PERTURBATIONS["change_value"].apply(spec, np.random.default_rng(0), touched)
    assert change is not None and f"'{spec.table.categories[0]}'" in change.edit.target
    everything = touched | {f"cat:{spec.table.categories[0]}"}
    assert PERTURBATIONS["change_value"].apply(spec, np.random.default_rng(0), everything) is None


@pytest.mark.parametrize("kind", KINDS)
def test_perturb_applies_distinct_edits_in_sequence(kind) -> None:
    for seed in range(6):
        changes = perturb(civilian_spec(kind, seed), np.random.default_rng(seed), names=list(PERTURBATIONS), count=2)
        assert len({change.edit.op for change in changes}) == 2
        assert not changes[0].touched & changes[1].touched
        assert describe(changes).count(";") == 1


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (("2019", "2020", "2021"), "2022"),
        (("2000", "2005"), "2010"),
        (("Week 4", "Week 5"), "Week 6"),
        (("P07", "P08"), "P09"),
        (("Oct", "Nov"), "Dec"),
        (("Nov", "Dec"), "Jan"),
        (("2021 Q3", "2021 Q4"), "2022 Q1"),
        (("2019/20", "2020/21"), "2021/22"),
        (("Mar 30", "Mar 31"), "Apr 1"),
        (("08:00", "09:00"), "10:00"),
        (("Brand A", "Brand B"), "Brand C"),
        (("France", "Spain"), "Other"),
        (("0–19", "20–39", "40+"), None),
        (("Other", "Spain"), None),
    ],
)
def test_next_label_continues_the_sequence(labels, expected) -> None:
    assert next_label(labels) == expected


def test_reword_changes_exactly_one_word() -> None:
    rng = np.random.default_rng(0)
    for text in ("Annual revenue by region", "Monthly rainfall in Lisbon, 2021", "Reaction time"):
        old, new, changed = reword(text, rng)
        assert old != new and changed == text.replace(old, new, 1)
    assert reword("by", rng) is None
