"""Named chart edits: each turns a spec into a visibly different spec and records exactly what it changed.

A perturbation returns None when it cannot apply to a spec (wrong data, hidden text, nothing left
untouched), so the caller draws another. Every applied edit names the things it touched (`cat:2019`,
`series:North`, `text:title`) and later edits of the same pair leave those alone, so that no edit undoes
or muddles another and the joined description stays true.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from chart_edit.spec import (
    SAMPLE_KINDS,
    SHAPES,
    ChartSpec,
    box_stats,
    category_color,
    category_label_shown,
    legend_entries,
    number_text,
    shown_label,
    with_unit,
)
from chart_edit.style import LINESTYLES, MARKERS, PALETTES, color_distance, color_name
from chart_edit.table import Table
from chart_edit.wording import next_label, reword
from datagen.errors import QualityRejected
from datagen.record import Edit

ALL_CATEGORIES = "all-cats"
"""Touched by edits that change every category of some series (swap_series)."""
ENDS = "ends"
"""Touched by edits that change which categories exist, so that a drop and an add cannot cancel out."""


@dataclass(frozen=True)
class Change:
    """One applied perturbation.

    Attributes:
        spec: the spec after the edit.
        edit: what changed, machine-readable.
        clause: the same in English, e.g. "the title word 'revenue' became 'income'".
        touched: conflict keys later edits of the pair must leave alone.
    """

    spec: ChartSpec
    edit: Edit
    clause: str
    touched: frozenset[str]


Apply = Callable[[ChartSpec, np.random.Generator, frozenset[str]], Change | None]


@dataclass(frozen=True)
class Perturbation:
    """A named edit and the chart kinds it applies to.

    Attributes:
        name: the `Edit.op` it records.
        kinds: chart kinds it can apply to.
        subtlety: 0 (obvious) .. 1 (subtle), feeding the pair's difficulty.
        apply: `(spec, rng, touched) -> Change`, or None when it cannot apply to this spec.
    """

    name: str
    kinds: frozenset[str]
    subtlety: float
    apply: Apply


def perturb(spec: ChartSpec, rng: np.random.Generator, *, names: Sequence[str], count: int) -> list[Change]:
    """Apply `count` distinct perturbations from `names` in sequence, each to the previous result.

    Raises:
        QualityRejected: fewer than `count` of them can apply to this spec.
    """
    changes: list[Change] = []
    touched: frozenset[str] = frozenset()
    current = spec
    for _ in range(count):
        used = {change.edit.op for change in changes}
        candidates = [n for n in names if n not in used and spec.kind in PERTURBATIONS[n].kinds]
        for name in rng.permutation(candidates) if candidates else ():
            change = PERTURBATIONS[str(name)].apply(current, rng, touched)
            if change is not None:
                break
        else:
            raise QualityRejected(
                f"only {len(changes)} of {count} edits apply to this {spec.kind} chart (candidates: {candidates})"
            )
        changes.append(change)
        touched |= change.touched
        current = change.spec
    return changes


def describe(changes: Sequence[Change]) -> str:
    """One English sentence joining the clauses, e.g. "The value ... rose ...; the title word ... became ..."."""
    text = "; ".join(change.clause for change in changes)
    return text[:1].upper() + text[1:] + "."


def _free_categories(spec: ChartSpec, touched: frozenset[str], *, shown: bool = False) -> list[int]:
    """Indices of categories no earlier edit touched (and, if asked, whose label is drawn)."""
    if ALL_CATEGORIES in touched:
        return []
    return [
        i
        for i, label in enumerate(spec.table.categories)
        if f"cat:{label}" not in touched and (not shown or category_label_shown(spec, i))
    ]


def _with_value(table: Table, series: int, index: int, value: float) -> Table:
    rows = [list(row) for row in table.values]
    rows[series][index] = value
    return table.with_values(rows)


def _text(spec: ChartSpec, value: float) -> str:
    return number_text(value, spec.frame.decimals)


def _span(spec: ChartSpec, series: int) -> float:
    """Length of the axis that shows `series`' values, for judging whether a change is visible."""
    low, high = spec.frame.x_range if spec.kind == "scatter" and series == 0 else spec.frame.value_range
    return high - low


def _of_series(spec: ChartSpec, series: int) -> str:
    """ "of 'North' " when the chart has several series, "" when the one series is implied."""
    return f"of '{spec.table.series_names[series]}' " if len(spec.table.series_names) > 1 else ""


_MARKS = {
    "bar": "bars",
    "barh": "bars",
    "grouped_bar": "bars",
    "stacked_bar": "bars",
    "line": "line",
    "area": "area",
    "scatter": "points",
    "histogram": "bars",
    "box": "box",
    "heatmap": "cells",
}


def _marks_of(spec: ChartSpec, series: int, marks: str | None = None) -> str:
    """ "'North' line" when the chart names its series (legend, axis), just "line" when its one series is unnamed.

    A scatter's two series are its axes, not groups of points, so its points are never named by series.
    """
    marks = marks or _MARKS[spec.kind]
    named = len(spec.table.series_names) > 1 and spec.kind != "scatter"
    return f"'{spec.table.series_names[series]}' {marks}" if named else marks


def _shifted(spec: ChartSpec, old: float, series: int, rng: np.random.Generator) -> float | None:
    """A new value 20-60% away from `old` and at least a clearly visible share of the axis away."""
    values = [v for row in spec.table.values for v in row]
    floor_zero = min(values) >= 0
    visible = {"heatmap": 0.3, "pie": 0.0, "donut": 0.0}.get(spec.kind, 0.08) * _span(spec, series)
    delta = max(rng.uniform(0.2, 0.6) * abs(old), visible)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    if floor_zero and old - delta <= 0:
        direction = 1.0
    new = round(old + direction * delta, spec.frame.decimals)
    return None if new == old else new


def _change_value(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One value changes visibly: a bar grows, a point moves, a slice widens, a cell changes colour."""
    if spec.kind in SAMPLE_KINDS:
        return _change_sample(spec, rng, touched)
    free = _free_categories(spec, touched)
    if not free:
        return None
    series = int(rng.integers(len(spec.table.series_names)))
    index = int(rng.choice(free))
    label, old = spec.table.categories[index], spec.table.values[series][index]
    new = _shifted(spec, old, series, rng)
    if new is None:
        return None
    table = _with_value(spec.table, series, index, new)
    verb = "rose" if new > old else "fell"
    amounts = f"from {with_unit(_text(spec, old), table.unit)} to {with_unit(_text(spec, new), table.unit)}"
    name = spec.table.series_names[series]
    if spec.kind == "scatter":
        x, y = (_text(spec, spec.table.values[s][index]) for s in (0, 1))
        target, clause = f"point ({x}, {y})", f"the point at ({x}, {y}) moved: its '{name}' value {verb} {amounts}"
    else:
        target = f"'{name}' at '{label}'"
        clause = f"the value {_of_series(spec, series)}at '{label}' {verb} {amounts}"
    edit = Edit("change_value", target, _text(spec, old), _text(spec, new))
    return Change(replace(spec, table=table), edit, clause, frozenset({f"cat:{label}"}))


def _change_sample(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One sample of a histogram moves at least two bins; one sample of a box plot becomes an outlier."""
    free = _free_categories(spec, touched)
    if not free:
        return None
    series, index = int(rng.integers(len(spec.table.series_names))), int(rng.choice(free))
    row, decimals = spec.table.values[series], spec.frame.decimals
    old = row[index]
    if spec.kind == "histogram":
        bins = spec.frame.bins
        here = next(b for b in range(len(bins) - 1) if old <= bins[b + 1])
        targets = [b for b in range(len(bins) - 1) if abs(b - here) >= 2]
        if not targets:
            return None
        target = int(rng.choice(targets))
        new = round((bins[target] + bins[target + 1]) / 2, decimals)
    else:
        stats, span = box_stats(row), _span(spec, series)
        above = stats.high + rng.uniform(0.15, 0.35) * span
        below = stats.low - rng.uniform(0.15, 0.35) * span
        new = round(above if rng.random() < 0.5 or (below < 0 <= min(row)) else below, decimals)
    name, label, unit = spec.table.series_names[series], spec.table.categories[index], spec.table.unit
    edit = Edit("change_value", f"'{name}' sample '{label}'", _text(spec, old), _text(spec, new))
    clause = (
        f"one {_marks_of(spec, series, 'value')} changed from {with_unit(_text(spec, old), unit)} "
        f"to {with_unit(_text(spec, new), unit)}"
    )
    table = _with_value(spec.table, series, index, new)
    return Change(replace(spec, table=table), edit, clause, frozenset({f"cat:{label}"}))


def _swap_values(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """Two clearly unequal values of one series trade places."""
    free = _free_categories(spec, touched)
    series = 1 if spec.kind == "scatter" else int(rng.integers(len(spec.table.series_names)))
    row = spec.table.values[series]
    gap = {"heatmap": 0.25, "pie": 0.0, "donut": 0.0}.get(spec.kind, 0.08) * _span(spec, series)
    gap = max(gap, 0.15 * max(row)) if spec.kind in ("pie", "donut") else gap
    pairs = [(i, j) for i in free for j in free if i < j and abs(row[i] - row[j]) >= gap]
    if not pairs:
        return None
    i, j = pairs[int(rng.integers(len(pairs)))]
    rows = [list(r) for r in spec.table.values]
    rows[series][i], rows[series][j] = row[j], row[i]
    a, b = spec.table.categories[i], spec.table.categories[j]
    before = f"'{a}': {_text(spec, row[i])}, '{b}': {_text(spec, row[j])}"
    after = f"'{a}': {_text(spec, row[j])}, '{b}': {_text(spec, row[i])}"
    name = spec.table.series_names[series]
    clause = (
        f"the values {_of_series(spec, series)}at '{a}' and '{b}' ({_text(spec, row[i])} and "
        f"{_text(spec, row[j])}) swapped"
    )
    if spec.kind == "scatter":
        clause = f"the '{name}' values of two points ({_text(spec, row[i])} and {_text(spec, row[j])}) swapped"
    edit = Edit("swap_values", f"'{name}' at '{a}' and '{b}'", before, after)
    return Change(replace(spec, table=spec.table.with_values(rows)), edit, clause, frozenset({f"cat:{a}", f"cat:{b}"}))


def _swap_labels(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """Two drawn category labels trade places while the data stay put."""
    free = _free_categories(spec, touched, shown=True)
    labels = spec.table.categories
    pairs = [(i, j) for i in free for j in free if i < j and shown_label(labels[i]) != shown_label(labels[j])]
    if not pairs:
        return None
    i, j = pairs[int(rng.integers(len(pairs)))]
    categories = list(labels)
    categories[i], categories[j] = labels[j], labels[i]
    a, b = labels[i], labels[j]
    edit = Edit("swap_labels", f"labels '{a}' and '{b}'", f"'{a}', '{b}'", f"'{b}', '{a}'")
    table = replace(spec.table, categories=tuple(categories))
    clause = f"the labels '{a}' and '{b}' swapped places"
    return Change(replace(spec, table=table), edit, clause, frozenset({f"cat:{a}", f"cat:{b}"}))


def _category_values(spec: ChartSpec, index: int) -> str:
    values = [_text(spec, row[index]) for row in spec.table.values]
    if len(values) == 1:
        return values[0]
    return ", ".join(f"{name} {value}" for name, value in zip(spec.table.series_names, values))


def _drop_category(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """A category disappears: the first or last one (others keep their place), or any scatter point or sample."""
    table, free = spec.table, _free_categories(spec, touched)
    last = len(table.categories) - 1
    if spec.kind == "scatter":
        free = [i for i in free if _stands_apart(table, i)]
    elif spec.kind != "histogram":
        free = [i for i in free if i in (0, last)]
    several = spec.kind == "histogram" and len(table.series_names) > 1
    if not free or several or ENDS in touched or last < max(2, SHAPES[spec.kind].categories[0] // 2):
        return None
    index = int(rng.choice(free))
    label = table.categories[index]
    keep = [i for i in range(last + 1) if i != index]
    dropped = replace(
        table,
        categories=tuple(table.categories[i] for i in keep),
        values=tuple(tuple(row[i] for i in keep) for row in table.values),
    )
    first_slot = spec.first_slot + 1 if index == 0 and spec.kind not in ("scatter", "histogram") else spec.first_slot
    shown = _category_values(spec, index)
    what = {"scatter": "point", "histogram": "value", "pie": "slice", "donut": "slice"}.get(spec.kind, "category")
    clause = (
        f"the {what} '{label}' ({with_unit(shown, table.unit)}) was removed"
        if spec.kind != "histogram"
        else f"one value ({with_unit(shown, table.unit)}) was removed"
    )
    edit = Edit("drop_category", f"{what} '{label}'", shown, "(none)")
    spy = replace(spec, table=dropped, first_slot=first_slot)
    return Change(spy, edit, clause, frozenset({f"cat:{label}", ENDS}))


def _stands_apart(table: Table, index: int, distance: float = 0.05) -> bool:
    """Whether scatter point `index` is clear of every other point, so that removing it shows."""
    xs, ys = table.values
    x_span, y_span = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    return all(
        max(abs(xs[index] - x) / x_span, abs(ys[index] - y) / y_span) > distance
        for i, (x, y) in enumerate(zip(xs, ys))
        if i != index
    )


def _add_category(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """A new category is appended: the next year, month, quarter... or "Other", with plausible values."""
    table = spec.table
    label = next_label(table.categories)
    several = spec.kind == "histogram" and len(table.series_names) > 1
    if label is None or several or ENDS in touched or ALL_CATEGORIES in touched:
        return None
    values = _new_values(spec, rng)
    if values is None:
        return None
    grown = replace(
        table,
        categories=table.categories + (label,),
        values=tuple(row + (value,) for row, value in zip(table.values, values)),
    )
    spy = replace(spec, table=grown)
    shown = _category_values(spy, len(grown.categories) - 1)
    what = {"scatter": "point", "histogram": "value", "pie": "slice", "donut": "slice"}.get(spec.kind, "category")
    clause = (
        f"a new {what} '{label}' ({with_unit(shown, table.unit)}) was added"
        if spec.kind != "histogram"
        else f"a new value ({with_unit(shown, table.unit)}) was added"
    )
    edit = Edit("add_category", f"{what} '{label}'", "(none)", shown)
    return Change(spy, edit, clause, frozenset({f"cat:{label}", ENDS}))


def _new_values(spec: ChartSpec, rng: np.random.Generator) -> list[float] | None:
    """Values for an added category: within each series' range, clearly non-zero, apart from other points."""
    decimals, rows = spec.frame.decimals, spec.table.values
    if spec.kind in ("pie", "donut"):
        value = round(rng.uniform(0.5, 1.2) * float(np.mean(rows[0])), decimals)
        return [value] if value > 0 else None
    if spec.kind == "scatter":
        spans = [(max(row) - min(row)) or 1.0 for row in rows]
        for _ in range(8):
            point = [round(rng.uniform(min(row), max(row)), decimals) for row in rows]
            if all(max(abs(point[0] - x) / spans[0], abs(point[1] - y) / spans[1]) > 0.08 for x, y in zip(*rows)):
                return point
        return None
    values = []
    for s, row in enumerate(rows):
        value = round(rng.uniform(min(row), max(row)), decimals)
        # A bar or point near the baseline would hardly show; the series maximum always does.
        if spec.kind not in ("histogram", "heatmap") and abs(value) < 0.1 * _span(spec, s):
            value = round(max(row), decimals)
        values.append(value)
    return values


def _swap_series(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """Two series exchange their data; names, colours and legend stay."""
    names = spec.table.series_names
    if any(key.startswith("cat:") for key in touched):
        return None
    free = [s for s, name in enumerate(names) if f"series:{name}" not in touched]
    pairs = [(a, b) for a in free for b in free if a < b and spec.table.values[a] != spec.table.values[b]]
    if not pairs:
        return None
    a, b = pairs[int(rng.integers(len(pairs)))]
    rows = list(spec.table.values)
    rows[a], rows[b] = rows[b], rows[a]
    edit = Edit(
        "swap_series",
        f"series '{names[a]}' and '{names[b]}'",
        f"'{names[a]}', '{names[b]}'",
        f"'{names[b]}', '{names[a]}'",
    )
    clause = f"the data of '{names[a]}' and '{names[b]}' were swapped"
    spy = replace(spec, table=spec.table.with_values(rows))
    return Change(spy, edit, clause, frozenset({f"series:{names[a]}", f"series:{names[b]}", ALL_CATEGORIES}))


def _edit_title(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One word of the drawn title changes."""
    if not spec.title or "text:title" in touched:
        return None
    result = reword(spec.title, rng)
    if result is None:
        return None
    old, new, title = result
    clause = f"the title word '{old}' became '{new}'"
    return Change(replace(spec, title=title), Edit("edit_title", "title", old, new), clause, frozenset({"text:title"}))


def _axis_names(spec: ChartSpec) -> dict[str, str]:
    """The drawn axis labels by spec field, with a readable name of where each is drawn."""
    if spec.kind == "barh":
        names = {"value_label": "x-axis label", "category_label": "y-axis label"}
    elif spec.kind == "heatmap":
        names = {"value_label": "colour-bar label", "category_label": "x-axis label"}
    else:
        names = {"value_label": "y-axis label", "category_label": "x-axis label"}
    return {field: name for field, name in names.items() if getattr(spec, field)}


def _edit_axis_label(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One word of a drawn axis label changes."""
    fields = [(field, name) for field, name in _axis_names(spec).items() if f"text:{field}" not in touched]
    if not fields:
        return None
    field, name = fields[int(rng.integers(len(fields)))]
    result = reword(getattr(spec, field), rng)
    if result is None:
        return None
    old, new, text = result
    clause = f"the {name} word '{old}' became '{new}'"
    return Change(
        replace(spec, **{field: text}), Edit("edit_axis_label", name, old, new), clause, frozenset({f"text:{field}"})
    )


def _edit_tick_label(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One drawn category label is renamed (a word, number or letter of it changes)."""
    labels = spec.table.categories
    options = []
    for i in _free_categories(spec, touched, shown=True):
        result = reword(labels[i], rng, avoid=frozenset(labels))
        if result is not None and shown_label(result[2]) != shown_label(labels[i]):
            options.append((i, result[2]))
    if not options:
        return None
    index, new = options[int(rng.integers(len(options)))]
    old = labels[index]
    categories = labels[:index] + (new,) + labels[index + 1 :]
    edit = Edit("edit_tick_label", f"category label '{old}'", old, new)
    clause = f"the label '{old}' became '{new}'"
    spy = replace(spec, table=replace(spec.table, categories=categories))
    return Change(spy, edit, clause, frozenset({f"cat:{old}", f"cat:{new}"}))


def _recolor(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One series (or slice) takes a clearly different colour whose name no other mark has."""
    style, table = spec.style, spec.table
    if spec.kind in ("pie", "donut"):
        used = [category_color(spec, i) for i in range(len(table.categories))]
        targets = [(i, f"cat:{label}", f"slice '{label}'") for i, label in enumerate(table.categories)]
    else:
        # A scatter's two series are its x and y; its points are drawn in the first colour.
        drawn = table.series_names[:1] if spec.kind == "scatter" else table.series_names
        used = list(style.colors[: len(drawn)])
        targets = [(s, f"series:{name}", _marks_of(spec, s)) for s, name in enumerate(drawn)]
    targets = [t for t in targets if t[1] not in touched]
    if not targets:
        return None
    index, key, target = targets[int(rng.integers(len(targets)))]
    old = used[index]
    taken = {color_name(c) for c in used} | {color_name(style.background)}
    choices = sorted(
        {
            c
            for palette in PALETTES.values()
            for c in palette
            if color_name(c) not in taken
            and color_distance(c, old) >= 120
            and color_distance(c, style.background) >= 100
        }
    )
    if not choices:
        return None
    new = str(rng.choice(choices))
    slot = (spec.first_slot + index) % len(style.colors) if spec.kind in ("pie", "donut") else index
    colors = style.colors[:slot] + (new,) + style.colors[slot + 1 :]
    spy = replace(spec, style=replace(style, colors=colors))
    clause = f"the colour of the {target} changed from {color_name(old)} to {color_name(new)}"
    return Change(spy, Edit("recolor", target, old, new), clause, frozenset({key}))


def _series_targets(spec: ChartSpec, touched: frozenset[str], values: Sequence[str]) -> list[int]:
    return [
        s for s, name in enumerate(spec.table.series_names) if f"series:{name}" not in touched and values[s] != "none"
    ]


def _change_marker(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One series' point markers take another shape (circle -> square)."""
    markers = spec.style.markers
    series = [s for s in _series_targets(spec, touched, markers) if spec.kind != "scatter" or s == 0]
    if not series:
        return None
    s = int(rng.choice(series))
    new = str(rng.choice([m for m in MARKERS if m not in markers]))
    spy = replace(spec, style=replace(spec.style, markers=markers[:s] + (new,) + markers[s + 1 :]))
    name = spec.table.series_names[s]
    target = _marks_of(spec, s)
    owner = "point" if spec.kind == "scatter" else target
    clause = f"the {owner} markers changed from {_plural(markers[s])} to {_plural(new)}"
    return Change(spy, Edit("change_marker", target, markers[s], new), clause, frozenset({f"series:{name}"}))


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


def _change_linestyle(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """One series' line takes another dash pattern (solid -> dashed)."""
    styles = spec.style.linestyles
    series = _series_targets(spec, touched, styles)
    if not series:
        return None
    s = int(rng.choice(series))
    new = str(rng.choice([ls for ls in LINESTYLES if ls != styles[s]]))
    spy = replace(spec, style=replace(spec.style, linestyles=styles[:s] + (new,) + styles[s + 1 :]))
    name = spec.table.series_names[s]
    clause = f"the line {_of_series(spec, s)}changed from {styles[s]} to {new}"
    return Change(
        spy, Edit("change_linestyle", f"series '{name}'", styles[s], new), clause, frozenset({f"series:{name}"})
    )


def _reorder_legend(spec: ChartSpec, rng: np.random.Generator, touched: frozenset[str]) -> Change | None:
    """Two legend entries trade places (each keeps its colour and name)."""
    entries = legend_entries(spec)
    if spec.kind in ("pie", "donut") or len(entries) < 2 or "legend" in touched:
        return None
    order = list(spec.style.legend_order)
    p, q = sorted(int(i) for i in rng.choice(len(order), size=2, replace=False))
    order[p], order[q] = order[q], order[p]
    spy = replace(spec, style=replace(spec.style, legend_order=tuple(order)))
    after = legend_entries(spy)
    edit = Edit("reorder_legend", "legend", ", ".join(entries), ", ".join(after))
    clause = f"the legend entries '{entries[p]}' and '{entries[q]}' swapped places"
    return Change(spy, edit, clause, frozenset({"legend"}))


_SERIES_KINDS = frozenset({"grouped_bar", "stacked_bar", "line", "area", "heatmap", "box", "histogram"})
_CATEGORY_KINDS = frozenset({"bar", "barh", "grouped_bar", "stacked_bar", "line", "area", "pie", "donut", "heatmap"})
_ALL_KINDS = frozenset(SHAPES)

PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation("change_value", _ALL_KINDS, 0.4, _change_value),
        Perturbation("swap_values", _CATEGORY_KINDS | {"scatter"}, 0.45, _swap_values),
        Perturbation("swap_labels", _CATEGORY_KINDS, 0.6, _swap_labels),
        Perturbation("drop_category", _CATEGORY_KINDS | {"scatter", "histogram"}, 0.2, _drop_category),
        Perturbation("add_category", _CATEGORY_KINDS | {"scatter", "histogram"}, 0.2, _add_category),
        Perturbation("swap_series", _SERIES_KINDS, 0.35, _swap_series),
        Perturbation("edit_title", _ALL_KINDS, 0.6, _edit_title),
        Perturbation("edit_axis_label", _ALL_KINDS - {"pie", "donut"}, 0.7, _edit_axis_label),
        Perturbation("edit_tick_label", _CATEGORY_KINDS, 0.7, _edit_tick_label),
        Perturbation("recolor", _ALL_KINDS - {"heatmap"}, 0.25, _recolor),
        Perturbation("change_marker", frozenset({"line", "scatter"}), 0.7, _change_marker),
        Perturbation("change_linestyle", frozenset({"line", "area"}), 0.6, _change_linestyle),
        Perturbation(
            "reorder_legend",
            frozenset({"grouped_bar", "stacked_bar", "line", "area", "histogram"}),
            0.8,
            _reorder_legend,
        ),
    )
}
