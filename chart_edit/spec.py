"""What a chart shows: its kind, table, style, texts and the shared frame (limits, bins, slots) that places it.

Pure Python: the spec never imports the renderer. The frame is computed once from the union of the
civilian and spy tables (`with_shared_frame`) so that a data edit moves only the marks it touches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from chart_edit.style import Style
from chart_edit.table import Table

KINDS = (
    "bar",
    "barh",
    "grouped_bar",
    "stacked_bar",
    "line",
    "area",
    "pie",
    "donut",
    "scatter",
    "histogram",
    "box",
    "heatmap",
)
SAMPLE_KINDS = ("histogram", "box")
"""Kinds that read each series as a bag of samples rather than one value per category."""
MAX_LABEL_CHARS = 24
"""Longer category labels are shortened with an ellipsis so that margins stay reasonable."""
MAX_SHOWN_LABELS = 12
"""At most this many category labels are written along an axis; the others are skipped evenly."""
TITLE_WRAP_CHARS = 52


@dataclass(frozen=True)
class Shape:
    """The tables a kind can draw: inclusive category and series counts, and sign constraints."""

    categories: tuple[int, int]
    series: tuple[int, int]
    non_negative: bool = False
    positive: bool = False


SHAPES: dict[str, Shape] = {
    "bar": Shape((3, 12), (1, 1)),
    "barh": Shape((3, 10), (1, 1)),
    "grouped_bar": Shape((3, 7), (2, 3)),
    "stacked_bar": Shape((3, 10), (2, 4), non_negative=True),
    "line": Shape((5, 24), (1, 4)),
    "area": Shape((5, 20), (1, 3)),
    "pie": Shape((3, 7), (1, 1), positive=True),
    "donut": Shape((3, 7), (1, 1), positive=True),
    "scatter": Shape((8, 30), (2, 2)),
    "histogram": Shape((20, 60), (1, 2)),
    "box": Shape((20, 60), (2, 5)),
    "heatmap": Shape((3, 10), (2, 6)),
}


@dataclass(frozen=True)
class Frame:
    """Placement shared by civilian and spy; fields a kind does not use keep their defaults.

    Attributes:
        slots: category positions on the category axis (covers the categories of both tables).
        value_range: value-axis limits (histogram: counts; heatmap: colour-scale limits).
        value_ticks: tick values on the value axis (heatmap: on the colour bar).
        x_range: scatter x limits, histogram sample range.
        x_ticks: tick values on a numeric x axis.
        bins: histogram bin edges.
        label_chars: longest category-axis label, in characters, for margins.
        legend_chars: longest legend entry (heatmap: row label), in characters.
        decimals: digits after the point in value labels and edit texts.
    """

    slots: int = 0
    value_range: tuple[float, float] = (0.0, 1.0)
    value_ticks: tuple[float, ...] = ()
    x_range: tuple[float, float] = (0.0, 1.0)
    x_ticks: tuple[float, ...] = ()
    bins: tuple[float, ...] = ()
    label_chars: int = 0
    legend_chars: int = 0
    decimals: int = 0


@dataclass(frozen=True)
class ChartSpec:
    """Everything the renderer needs to draw one chart, JSON-serialisable.

    Attributes:
        kind: one of `KINDS`.
        table: the data.
        style: the look.
        frame: placement shared with the other image of the pair.
        title: the drawn title ("" when hidden); may hold one line break.
        value_label: value-axis label, "" when hidden (scatter: y axis).
        category_label: category-axis label, "" when hidden (scatter, histogram: x axis).
        first_slot: slot of the first category, so that dropping the first category leaves the others in place.
    """

    kind: str
    table: Table
    style: Style
    frame: Frame
    title: str
    value_label: str
    category_label: str
    first_slot: int = 0

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form, stored in a pair's `meta`."""
        return {
            "kind": self.kind,
            "table": self.table.to_json(),
            "style": self.style.to_json(),
            "frame": asdict(self.frame),
            "title": self.title,
            "value_label": self.value_label,
            "category_label": self.category_label,
            "first_slot": self.first_slot,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChartSpec:
        """Inverse of `to_json`."""
        frame = {key: tuple(value) if isinstance(value, list) else value for key, value in data["frame"].items()}
        return cls(
            kind=data["kind"],
            table=Table.from_json(data["table"]),
            style=Style.from_json(data["style"]),
            frame=Frame(**frame),
            title=data["title"],
            value_label=data["value_label"],
            category_label=data["category_label"],
            first_slot=int(data["first_slot"]),
        )


@dataclass(frozen=True)
class BoxStats:
    """Tukey box-plot statistics of one sample: quartiles, whisker ends (1.5 IQR rule) and outliers."""

    q1: float
    median: float
    q3: float
    low: float
    high: float
    fliers: tuple[float, ...]


def shape_problem(kind: str, table: Table) -> str | None:
    """Why `table` cannot be drawn as `kind`, or None when it can."""
    shape = SHAPES[kind]
    n_categories, n_series = len(table.categories), len(table.series_names)
    if not shape.categories[0] <= n_categories <= shape.categories[1]:
        return f"{kind} needs {shape.categories[0]}..{shape.categories[1]} categories, table has {n_categories}"
    if not shape.series[0] <= n_series <= shape.series[1]:
        return f"{kind} needs {shape.series[0]}..{shape.series[1]} series, table has {n_series}"
    values = [v for row in table.values for v in row]
    if shape.positive and min(values) <= 0:
        return f"{kind} needs positive values"
    if shape.non_negative and min(values) < 0:
        return f"{kind} needs non-negative values"
    return None


def make_spec(kind: str, table: Table, style: Style, rng: np.random.Generator) -> ChartSpec:
    """The civilian spec of `table` drawn as `kind`, with sampled title and axis-label wording."""
    unit_suffix = f" ({table.unit})" if table.unit else ""
    title = ""
    if style.show_title:
        by = f"{table.value_name} by {table.category_name.lower()}"
        wordings = [table.title, f"Distribution of {table.value_name.lower()}" if kind in SAMPLE_KINDS else by]
        title = _wrap(wordings[int(rng.integers(len(wordings)))] + (unit_suffix if rng.random() < 0.3 else ""))
    value_label = table.value_name + unit_suffix if rng.random() < 0.85 else ""
    category_label = table.category_name if rng.random() < 0.75 else ""
    if kind == "scatter":
        x_name, y_name = table.series_names
        value_label, category_label = y_name + unit_suffix, x_name + unit_suffix
    elif kind == "histogram":
        category_label = table.value_name + unit_suffix
        value_label = str(rng.choice(("Count", "Frequency"))) if value_label else ""
    elif kind == "box":
        category_label = ""
    elif kind in ("pie", "donut"):
        value_label = category_label = ""
    spec = ChartSpec(kind, table, style, Frame(), title, value_label, category_label)
    return replace(spec, frame=shared_frame([spec]))


def with_shared_frame(specs: Sequence[ChartSpec]) -> list[ChartSpec]:
    """`specs` with one frame computed from all their tables, so that they differ only where edited."""
    frame = shared_frame(specs)
    return [replace(spec, frame=frame) for spec in specs]


def shared_frame(specs: Sequence[ChartSpec]) -> Frame:
    """The frame that fits every spec's table (they must share a kind)."""
    kind = specs[0].kind
    tables = [spec.table for spec in specs]
    categories = [label for table in tables for label in table.categories]
    names = [name for table in tables for name in table.series_names]
    frame = Frame(
        slots=max(spec.first_slot + len(spec.table.categories) for spec in specs),
        label_chars=max(len(shown_label(label)) for label in categories),
        legend_chars=max(len(shown_label(label)) for label in (categories if kind in ("pie", "donut") else names)),
        decimals=max(value_decimals(table) for table in tables),
    )
    values = [v for table in tables for row in table.values for v in row]
    lo, hi = min(values), max(values)
    if kind in ("bar", "barh", "grouped_bar"):
        return replace(frame, **_value_axis(min(lo, 0.0), max(hi, 0.0), headroom=0.12))
    if kind == "stacked_bar":
        sums = [sum(column) for table in tables for column in zip(*table.values)]
        return replace(frame, **_value_axis(0.0, max(sums), headroom=0.12))
    if kind == "line":
        return replace(frame, **_value_axis(lo, hi, headroom=0.06, footroom=0.06))
    if kind == "area":
        return replace(frame, **_value_axis(min(lo, 0.0), hi, headroom=0.06))
    if kind == "scatter":
        return replace(frame, **_scatter_axes(tables))
    if kind == "histogram":
        return replace(frame, **_histogram_axes(tables))
    if kind == "box":
        return replace(
            frame,
            slots=len(tables[0].series_names),
            label_chars=max(len(shown_label(n)) for n in names),
            **_value_axis(lo, hi, headroom=0.06, footroom=0.06),
        )
    if kind == "heatmap":
        span = hi - lo if hi > lo else 1.0
        ticks = tuple(t for t in nice_ticks(lo, hi, 4)[2] if lo - 1e-9 * span <= t <= hi + 1e-9 * span)
        return replace(frame, value_range=(lo, hi if hi > lo else lo + 1.0), value_ticks=ticks)
    return frame


def _value_axis(lo: float, hi: float, *, headroom: float, footroom: float = 0.0) -> dict[str, Any]:
    """Value-axis range and ticks with room above (and below) the data, e.g. for value labels."""
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    # Room below the data never reaches below zero for data that cannot be negative.
    floor = lo - footroom * span if lo < 0 else max(0.0, lo - footroom * span)
    low, high, ticks = nice_ticks(floor, hi + headroom * span)
    return {"value_range": (low, high), "value_ticks": ticks}


def _scatter_axes(tables: Sequence[Table]) -> dict[str, Any]:
    xs = [v for table in tables for v in table.values[0]]
    ys = [v for table in tables for v in table.values[1]]
    x_span, y_span = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    x_low, x_high, x_ticks = nice_ticks(min(xs) - 0.06 * x_span, max(xs) + 0.06 * x_span)
    y_low, y_high, y_ticks = nice_ticks(min(ys) - 0.06 * y_span, max(ys) + 0.06 * y_span)
    return {"x_range": (x_low, x_high), "x_ticks": x_ticks, "value_range": (y_low, y_high), "value_ticks": y_ticks}


def _histogram_axes(tables: Sequence[Table]) -> dict[str, Any]:
    samples = [v for table in tables for row in table.values for v in row]
    lo, hi = min(samples), max(samples)
    step = _nice_step(((hi - lo) or 1.0) / 10)
    first = math.floor(lo / step) * step
    count = max(1, math.floor((hi - first) / step) + 1)
    bins = tuple(_clean(first + i * step) for i in range(count + 1))
    most = max(c for table in tables for row in table.values for c in histogram_counts(row, bins))
    low, high, ticks = nice_ticks(0.0, most * 1.1, integer=True)
    every = math.ceil(len(bins) / 7)
    return {
        "bins": bins,
        "x_range": (bins[0], bins[-1]),
        "x_ticks": bins[::every],
        "value_range": (low, high),
        "value_ticks": ticks,
    }


def nice_ticks(
    lo: float, hi: float, target: int = 5, *, integer: bool = False
) -> tuple[float, float, tuple[float, ...]]:
    """Round axis limits enclosing [lo, hi] and evenly spaced ticks at 1, 2, 2.5 or 5 times a power of ten."""
    if hi <= lo:
        lo, hi = lo - max(abs(lo), 1.0) * 0.5, hi + max(abs(hi), 1.0) * 0.5
    step = _nice_step((hi - lo) / target)
    if integer:
        step = max(1.0, round(step))
    low, high = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    count = round((high - low) / step)
    return _clean(low), _clean(high), tuple(_clean(low + i * step) for i in range(count + 1))


def _nice_step(raw: float) -> float:
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw * (1 - 1e-9))


def _clean(value: float) -> float:
    """Drop float noise such as 0.30000000000000004 so that ticks print and compare exactly."""
    return float(f"{value:.12g}")


def tick_texts(ticks: Sequence[float]) -> list[str]:
    """Labels for evenly spaced ticks: shared decimals, thousands separators, M/B suffixes for large values."""
    if not ticks:
        return []
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    largest = max(abs(t) for t in ticks)
    scale, suffix = (1e9, "B") if largest >= 1e9 else (1e6, "M") if largest >= 1e6 else (1.0, "")
    decimals = 0
    while decimals < 6 and abs(round(step / scale, decimals) - step / scale) > 1e-9 * (step / scale):
        decimals += 1
    return [f"{t / scale:,.{decimals}f}{suffix}".replace("-", "\u2212") for t in ticks]


def value_decimals(table: Table) -> int:
    """Digits after the point needed to print every value of `table` exactly (at most 3)."""
    needed = 0
    for value in (v for row in table.values for v in row):
        while needed < 3 and abs(round(value, needed) - value) > 1e-9 * max(1.0, abs(value)):
            needed += 1
    return needed


def number_text(value: float, decimals: int) -> str:
    """A value as written in edits and descriptions: fixed decimals, no separators."""
    return f"{value:.{decimals}f}"


def with_unit(text: str, unit: str) -> str:
    """`12.5` + `USD m` -> `12.5 USD m`; `%` attaches without a space."""
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def shown_label(label: str) -> str:
    """A category label as drawn: shortened with an ellipsis past `MAX_LABEL_CHARS`."""
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "\u2026"


def label_step(frame: Frame) -> int:
    """Every how many slots a category label is written (1 = all)."""
    return max(1, math.ceil(frame.slots / MAX_SHOWN_LABELS))


def category_label_shown(spec: ChartSpec, index: int) -> bool:
    """Whether category `index` has its label drawn somewhere (axis, legend or slice label)."""
    if spec.kind in ("pie", "donut"):
        return True
    if spec.kind in ("scatter", "histogram", "box"):
        return False
    return (spec.first_slot + index) % label_step(spec.frame) == 0


def legend_entries(spec: ChartSpec) -> tuple[str, ...]:
    """Legend texts in drawn order; empty when the chart has no legend."""
    if spec.kind in ("pie", "donut"):
        return spec.table.categories if spec.style.pie_labels == "legend" else ()
    if spec.kind in ("bar", "barh", "scatter", "box", "heatmap") or len(spec.table.series_names) < 2:
        return ()
    return tuple(spec.table.series_names[i] for i in spec.style.legend_order)


def category_color(spec: ChartSpec, index: int) -> str:
    """Colour of category `index` in a pie or donut (follows its slot, so dropping the first keeps colours)."""
    colors = spec.style.colors
    return colors[(spec.first_slot + index) % len(colors)]


def histogram_counts(samples: Sequence[float], bins: Sequence[float]) -> list[int]:
    """Samples per bin; the last bin includes its right edge, as numpy does."""
    counts, _ = np.histogram(np.asarray(samples, dtype=float), bins=np.asarray(bins, dtype=float))
    return [int(c) for c in counts]


def box_stats(samples: Sequence[float]) -> BoxStats:
    """Quartiles (linear interpolation), whiskers at the furthest samples within 1.5 IQR, and the rest as fliers."""
    data = np.sort(np.asarray(samples, dtype=float))
    q1, median, q3 = (float(q) for q in np.percentile(data, [25, 50, 75]))
    reach = 1.5 * (q3 - q1)
    inside = data[(data >= q1 - reach) & (data <= q3 + reach)]
    fliers = tuple(float(v) for v in data[(data < q1 - reach) | (data > q3 + reach)])
    return BoxStats(q1, median, q3, float(inside.min()), float(inside.max()), fliers)


def _wrap(title: str) -> str:
    """Break a long title at the space nearest its middle; edits keep the break, so layout stays shared."""
    if len(title) <= TITLE_WRAP_CHARS or " " not in title:
        return title
    spaces = [i for i, ch in enumerate(title) if ch == " "]
    cut = min(spaces, key=lambda i: abs(i - len(title) / 2))
    return title[:cut] + "\n" + title[cut + 1 :]
