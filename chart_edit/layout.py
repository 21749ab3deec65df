"""Scenes of chart specs: keyed plain-data primitives in pixel coordinates, and which of them an edit redraws."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chart_edit.spec import (
    ChartSpec,
    box_stats,
    category_color,
    category_label_shown,
    histogram_counts,
    label_step,
    legend_entries,
    shown_label,
    tick_texts,
)
from chart_edit.style import luminance

DPI = 100
"""Pixels per inch of the output: a point (line widths, font sizes) is DPI / 72 pixels."""
PX_PER_PT = DPI / 72
CHAR_WIDTH = 0.6
"""Average glyph advance in ems of the shipped fonts, used to reserve margins for a number of characters."""
INK = "#333333"
AXIS_TEXT_Z = 0.25
"""Titles, tick labels and axis titles lie outside the plot and overlap no mark, so drawing them first
changes no pixel, and a changed mark (a bar, a spine) then never forces them to be redrawn."""

_CATEGORY_X = ("bar", "grouped_bar", "stacked_bar", "line", "area", "box", "heatmap")
_PATCH_HANDLES = ("grouped_bar", "stacked_bar", "area", "histogram", "pie", "donut")


@dataclass(frozen=True)
class Rect:
    """Axis-aligned rectangle; `edge_width` in points."""

    x0: float
    y0: float
    x1: float
    y1: float
    face: str
    edge: str = "none"
    edge_width: float = 0.0
    alpha: float = 1.0
    z: float = 1.0


@dataclass(frozen=True)
class Fill:
    """Filled polygon without outline."""

    points: tuple[tuple[float, float], ...]
    face: str
    alpha: float = 1.0
    z: float = 1.0


@dataclass(frozen=True)
class Stroke:
    """Polyline and/or markers; `width` and `marker_size` in points, `style` a line-style name or "none"."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    color: str
    width: float = 1.0
    style: str = "solid"
    marker: str = "none"
    marker_size: float = 0.0
    z: float = 2.0


@dataclass(frozen=True)
class Segments:
    """Separate straight segments `(x0, y0, x1, y1)` drawn as one artist (ticks, gridlines, whiskers)."""

    segments: tuple[tuple[float, float, float, float], ...]
    color: str
    width: float = 1.0
    z: float = 2.5


@dataclass(frozen=True)
class Label:
    """Text anchored at (x, y), rotated about its anchor; `size` in pixels."""

    x: float
    y: float
    text: str
    size: float
    color: str
    family: str
    ha: str = "center"
    va: str = "center"
    rotation: float = 0.0
    weight: str = "normal"
    z: float = 3.0


@dataclass(frozen=True)
class Sector:
    """Pie slice (`ring` None) or ring segment of width `ring` pixels; angles in degrees."""

    cx: float
    cy: float
    radius: float
    theta1: float
    theta2: float
    ring: float | None
    face: str
    edge: str
    edge_width: float
    z: float = 1.0


Primitive = Rect | Fill | Stroke | Segments | Label | Sector
Key = tuple[object, ...]
Scene = dict[Key, Primitive]
Shade = Callable[[str, float], str]
"""`#rrggbb` of the colormap named by the first argument at a fraction in [0, 1]; colormaps belong to the
drawing library, so the caller of `build_scene` passes this in."""


@dataclass(frozen=True)
class _Page:
    """Output size and text metrics in pixels, and the colormap lookup; text scales with the smaller side."""

    width: int
    height: int
    family: str
    text: float
    scale: float
    """Output size relative to 640x480; line widths and marker sizes (points) are multiplied by it."""
    shade: Shade

    @property
    def pad(self) -> float:
        return 0.6 * self.text + 2

    @property
    def tick_text(self) -> float:
        return 0.88 * self.text

    @property
    def small(self) -> float:
        return 0.8 * self.text

    @property
    def tick(self) -> float:
        return 0.35 * self.text

    @property
    def row(self) -> float:
        return 1.5 * self.tick_text


@dataclass(frozen=True)
class _Axes:
    """Where a cartesian chart's parts go: the plot rectangle and the anchors around it."""

    x0: float
    y0: float
    x1: float
    y1: float
    rotate: bool
    x_label_y: float
    legend_x: float
    legend_top: float
    legend_columns: int

    def slot(self, slot: int, slots: int, *, horizontal: bool = False) -> float:
        """Centre of a category slot; horizontal charts list slots top-down."""
        if horizontal:
            return self.y1 - (slot + 0.5) * (self.y1 - self.y0) / slots
        return self.x0 + (slot + 0.5) * (self.x1 - self.x0) / slots

    def slot_size(self, slots: int, *, horizontal: bool = False) -> float:
        return ((self.y1 - self.y0) if horizontal else (self.x1 - self.x0)) / slots

    def x(self, value: float, limits: tuple[float, float]) -> float:
        return self.x0 + (value - limits[0]) / (limits[1] - limits[0]) * (self.x1 - self.x0)

    def y(self, value: float, limits: tuple[float, float]) -> float:
        return self.y0 + (value - limits[0]) / (limits[1] - limits[0]) * (self.y1 - self.y0)


def scene_changes(first: Scene, second: Scene) -> set[Key]:
    """Keys of the primitives that differ between two scenes; empty means the edit is invisible."""
    return {key for key in first.keys() | second.keys() if first.get(key) != second.get(key)}


def build_scene(spec: ChartSpec, width: int, height: int, shade: Shade) -> Scene:
    """The primitives that draw `spec` at `width` x `height`, keyed by what they show."""
    scale = min(max(min(width / 640, height / 480), 0.45), 3.0)
    page = _Page(width, height, spec.style.font_family, spec.style.font_size * PX_PER_PT * scale, scale, shade)
    scene: Scene = {}
    if spec.title:
        _title(scene, spec, page)
    if spec.kind in ("pie", "donut"):
        _pie(scene, spec, page)
        return scene
    axes = _layout(spec, page)
    _axes_decor(scene, spec, page, axes)
    _MARKS[spec.kind](scene, spec, page, axes)
    _legend(scene, spec, page, (axes.legend_x, axes.legend_top), axes.legend_columns)
    return scene


def _title(scene: Scene, spec: ChartSpec, page: _Page) -> None:
    left = spec.style.title_align == "left"
    scene[("title",)] = Label(
        page.pad if left else page.width / 2,
        page.height - page.pad,
        spec.title,
        1.2 * page.text,
        INK,
        page.family,
        ha="left" if left else "center",
        va="top",
        weight="bold",
        z=AXIS_TEXT_Z,
    )


def _title_height(spec: ChartSpec, page: _Page) -> float:
    return (spec.title.count("\n") + 1) * 1.2 * page.text * 1.25 + page.pad if spec.title else 0.0


def _text_width(chars: int, size: float) -> float:
    return chars * size * CHAR_WIDTH


def _legend_count(spec: ChartSpec) -> int:
    """Legend rows to reserve: pies reserve every slot of the shared frame, so entries never move."""
    if not legend_entries(spec):
        return 0
    return spec.frame.slots if spec.kind in ("pie", "donut") else len(spec.table.series_names)


def _legend_entry_width(spec: ChartSpec, page: _Page) -> float:
    return 2.2 * page.tick_text + _text_width(spec.frame.legend_chars, page.tick_text) + page.pad


def _axis_titles(spec: ChartSpec) -> tuple[str, str]:
    """The (x-axis, y-axis) label texts; a heatmap's value label titles its colour bar instead."""
    if spec.kind == "barh":
        return spec.value_label, spec.category_label
    if spec.kind == "heatmap":
        return spec.category_label, ""
    return spec.category_label, spec.value_label


def _layout(spec: ChartSpec, page: _Page) -> _Axes:
    """Fixed margins from character counts in the shared frame, never from measured text, so both images agree."""
    style, count = spec.style, _legend_count(spec)
    x_title, y_title = _axis_titles(spec)
    entry = _legend_entry_width(spec, page)
    top = page.height - page.pad - _title_height(spec, page)
    left = page.pad + (1.4 * page.text if y_title else 0.0) + _y_tick_width(spec, page) + page.tick + 3
    right = page.width - page.pad - _right_extra(spec, page)
    bottom, legend, columns = page.pad, (0.0, top), 1
    if count and style.legend_loc == "right":
        right -= entry + page.pad
        legend = (right + page.pad, top)
    elif count:
        columns = max(1, min(count, int((right - left) // entry)))
        band = math.ceil(count / columns) * page.row
        if style.legend_loc == "top":
            legend, top = (left, top), top - band - page.pad / 2
        else:
            legend, bottom = (left, bottom + band), bottom + band + page.pad / 2
    x_label_y = bottom
    bottom += 1.4 * page.text if x_title else 0.0
    rotate, label_height, overhang = _x_tick_extent(spec, page, right - left)
    left = max(left, page.pad + overhang)
    bottom += page.tick + 3 + label_height
    return _Axes(left, bottom, max(right, left + 10), max(top, bottom + 10), rotate, x_label_y, *legend, columns)


def _y_tick_width(spec: ChartSpec, page: _Page) -> float:
    frame = spec.frame
    if spec.kind == "barh":
        return _text_width(frame.label_chars, page.tick_text)
    if spec.kind == "heatmap":
        return _text_width(frame.legend_chars, page.tick_text)
    return _text_width(max(len(t) for t in tick_texts(frame.value_ticks)), page.tick_text)


def _right_extra(spec: ChartSpec, page: _Page) -> float:
    """Room right of the plot: half a tick label, or a heatmap's colour bar with its ticks and title."""
    if spec.kind != "heatmap":
        return _text_width(2, page.tick_text)
    ticks = max((len(t) for t in tick_texts(spec.frame.value_ticks)), default=0)
    title = 1.4 * page.text if spec.value_label else 0.0
    return 0.04 * page.width + page.pad + page.tick + 3 + _text_width(ticks, page.tick_text) + title


def _x_tick_extent(spec: ChartSpec, page: _Page, plot_width: float) -> tuple[bool, float, float]:
    """Whether x labels are slanted, their height, and how far the first one reaches left of the plot."""
    if spec.kind not in _CATEGORY_X:
        return False, 1.3 * page.tick_text, 0.0
    step = 1 if spec.kind == "box" else label_step(spec.frame)
    width = _text_width(spec.frame.label_chars, page.tick_text)
    slot = plot_width / spec.frame.slots
    if width <= 0.95 * slot * step:
        return False, 1.3 * page.tick_text, 0.0
    return True, 0.71 * width + page.tick_text, 0.71 * width - slot / 2


def _axes_decor(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    """Plot background, gridlines, spines, ticks with their labels, and the axis titles."""
    style = spec.style
    if style.plot_background != "same":
        scene[("plot_background",)] = Rect(axes.x0, axes.y0, axes.x1, axes.y1, style.plot_background, z=0.0)
    x_ticks, y_ticks = _x_ticks(spec, axes), _y_ticks(spec, axes)
    if style.grid and spec.kind != "heatmap":
        grid = "#ffffff" if style.plot_background != "same" else "#dddddd"
        lines = (
            tuple((x, axes.y0, x, axes.y1) for _, x, _ in x_ticks)
            if spec.kind == "barh"
            else tuple((axes.x0, y, axes.x1, y) for _, y, _ in y_ticks)
        )
        scene[("grid",)] = Segments(lines, grid, 0.8 * page.scale, z=0.5)
    sides = {"box": ("left", "bottom", "right", "top"), "open": ("left", "bottom"), "none": ()}[style.spines]
    ends = {
        "left": (axes.x0, axes.y0, axes.x0, axes.y1),
        "bottom": (axes.x0, axes.y0, axes.x1, axes.y0),
        "right": (axes.x1, axes.y0, axes.x1, axes.y1),
        "top": (axes.x0, axes.y1, axes.x1, axes.y1),
    }
    if sides and spec.kind != "heatmap":
        scene[("spines",)] = Segments(tuple(ends[side] for side in sides), INK, 0.9 * page.scale)
    lo, hi = spec.frame.value_range
    if spec.kind in ("bar", "barh", "grouped_bar", "area") and lo < 0 < hi:
        zero = axes.x(0.0, (lo, hi)) if spec.kind == "barh" else axes.y(0.0, (lo, hi))
        line = (zero, axes.y0, zero, axes.y1) if spec.kind == "barh" else (axes.x0, zero, axes.x1, zero)
        scene[("zero_line",)] = Segments((line,), INK, 0.8 * page.scale, z=2.4)
    _tick_row(scene, spec, page, axes, x_ticks, vertical=False)
    _tick_row(scene, spec, page, axes, y_ticks, vertical=True)
    x_title, y_title = _axis_titles(spec)
    if x_title:
        scene[("x_title",)] = Label(
            (axes.x0 + axes.x1) / 2, axes.x_label_y, x_title, page.text, INK, page.family, va="bottom", z=AXIS_TEXT_Z
        )
    if y_title:
        scene[("y_title",)] = Label(
            page.pad,
            (axes.y0 + axes.y1) / 2,
            y_title,
            page.text,
            INK,
            page.family,
            va="top",
            rotation=90.0,
            z=AXIS_TEXT_Z,
        )


def _tick_row(
    scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes, ticks: list[tuple[object, float, str]], *, vertical: bool
) -> None:
    """Tick marks (one primitive) and one label per tick, keyed by slot or tick index."""
    if not ticks:
        return
    name = "y" if vertical else "x"
    if vertical:
        marks = tuple((axes.x0 - page.tick, pos, axes.x0, pos) for _, pos, _ in ticks)
    else:
        marks = tuple((pos, axes.y0 - page.tick, pos, axes.y0) for _, pos, _ in ticks)
    scene[(f"{name}_ticks",)] = Segments(marks, INK, 0.8 * page.scale)
    for key, pos, text in ticks:
        if vertical:
            label = Label(
                axes.x0 - page.tick - 3, pos, text, page.tick_text, INK, page.family, ha="right", z=AXIS_TEXT_Z
            )
        elif axes.rotate:
            label = Label(
                pos + 2,
                axes.y0 - page.tick - 5,
                text,
                page.tick_text,
                INK,
                page.family,
                ha="right",
                va="center",
                rotation=45.0,
                z=AXIS_TEXT_Z,
            )
        else:
            label = Label(pos, axes.y0 - page.tick - 3, text, page.tick_text, INK, page.family, va="top", z=AXIS_TEXT_Z)
        scene[(f"{name}_label", key)] = label


def _x_ticks(spec: ChartSpec, axes: _Axes) -> list[tuple[object, float, str]]:
    """(key, pixel position, text) of each x tick."""
    frame, table = spec.frame, spec.table
    if spec.kind == "box":
        return [(s, axes.slot(s, frame.slots), shown_label(name)) for s, name in enumerate(table.series_names)]
    if spec.kind in _CATEGORY_X:
        return [
            (spec.first_slot + i, axes.slot(spec.first_slot + i, frame.slots), shown_label(label))
            for i, label in enumerate(table.categories)
            if category_label_shown(spec, i)
        ]
    ticks, limits = (frame.value_ticks, frame.value_range) if spec.kind == "barh" else (frame.x_ticks, frame.x_range)
    return [(i, axes.x(t, limits), text) for i, (t, text) in enumerate(zip(ticks, tick_texts(ticks)))]


def _y_ticks(spec: ChartSpec, axes: _Axes) -> list[tuple[object, float, str]]:
    """(key, pixel position, text) of each y tick."""
    frame, table = spec.frame, spec.table
    if spec.kind == "barh":
        return [
            (spec.first_slot + i, axes.slot(spec.first_slot + i, frame.slots, horizontal=True), shown_label(c))
            for i, c in enumerate(table.categories)
            if category_label_shown(spec, i)
        ]
    if spec.kind == "heatmap":
        rows = len(table.series_names)
        return [
            (s, axes.y1 - (s + 0.5) * (axes.y1 - axes.y0) / rows, shown_label(name))
            for s, name in enumerate(table.series_names)
        ]
    ticks = frame.value_ticks
    return [(i, axes.y(t, frame.value_range), text) for i, (t, text) in enumerate(zip(ticks, tick_texts(ticks)))]


def _value_text(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}".replace("-", "\u2212")


def _bar_marks(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    """Bars of bar, barh, grouped_bar and stacked_bar, with optional value labels."""
    frame, style, table = spec.frame, spec.style, spec.table
    horizontal, stacked = spec.kind == "barh", spec.kind == "stacked_bar"
    count = len(table.series_names)
    width = style.bar_width * axes.slot_size(frame.slots, horizontal=horizontal)
    if spec.kind == "grouped_bar":
        width /= count
    place = axes.x if horizontal else axes.y
    base = [0.0] * len(table.categories)
    for s, row in enumerate(table.values):
        for i, value in enumerate(row):
            slot = spec.first_slot + i
            center = axes.slot(slot, frame.slots, horizontal=horizontal)
            if spec.kind == "grouped_bar":
                center += (s - (count - 1) / 2) * width * (-1 if horizontal else 1)
            start, end = place(base[i], frame.value_range), place(base[i] + value, frame.value_range)
            low, high = min(start, end), max(start, end)
            a, b = center - width / 2, center + width / 2
            face = style.colors[s]
            edge = 0.8 * page.scale
            rect = (
                Rect(low, a, high, b, face, style.edge_color, edge)
                if horizontal
                else Rect(a, low, b, high, face, style.edge_color, edge)
            )
            scene[("bar", s, slot)] = rect
            if style.value_labels:
                label = _bar_label(spec, page, rect, value, horizontal=horizontal, inside=stacked)
                if label is not None:
                    scene[("bar_label", s, slot)] = label
            if stacked:
                base[i] += value


def _bar_label(
    spec: ChartSpec, page: _Page, rect: Rect, value: float, *, horizontal: bool, inside: bool
) -> Label | None:
    """Value written past the bar's end, or centred inside a stacked segment when it fits."""
    text = _value_text(value, spec.frame.decimals)
    size, family = page.small, page.family
    if inside:
        if rect.y1 - rect.y0 < 1.3 * size:
            return None
        color = INK if luminance(rect.face) > 0.5 else "#ffffff"
        return Label((rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2, text, size, color, family)
    if horizontal:
        if value >= 0:
            return Label(rect.x1 + 3, (rect.y0 + rect.y1) / 2, text, size, INK, family, ha="left")
        return Label(rect.x0 - 3, (rect.y0 + rect.y1) / 2, text, size, INK, family, ha="right")
    if value >= 0:
        return Label((rect.x0 + rect.x1) / 2, rect.y1 + 2, text, size, INK, family, va="bottom")
    return Label((rect.x0 + rect.x1) / 2, rect.y0 - 2, text, size, INK, family, va="top")


def _line_marks(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    """One polyline per series with its marker and line style; areas add a translucent fill to the baseline."""
    frame, style = spec.frame, spec.style
    xs = tuple(axes.slot(spec.first_slot + i, frame.slots) for i in range(len(spec.table.categories)))
    lo, hi = frame.value_range
    baseline = axes.y(min(max(0.0, lo), hi), frame.value_range)
    for s, row in enumerate(spec.table.values):
        ys = tuple(axes.y(v, frame.value_range) for v in row)
        if spec.kind == "area":
            outline = tuple(zip(xs, ys)) + ((xs[-1], baseline), (xs[0], baseline))
            scene[("area", s)] = Fill(outline, style.colors[s], style.alpha, z=1.5)
        marker = "none" if spec.kind == "area" else style.markers[s]
        scene[("line", s)] = Stroke(
            xs,
            ys,
            style.colors[s],
            style.line_width * page.scale,
            style.linestyles[s],
            marker,
            style.marker_size * page.scale,
        )


def _scatter_marks(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    frame, style = spec.frame, spec.style
    xs = tuple(axes.x(v, frame.x_range) for v in spec.table.values[0])
    ys = tuple(axes.y(v, frame.value_range) for v in spec.table.values[1])
    scene[("points",)] = Stroke(xs, ys, style.colors[0], 0.0, "none", style.markers[0], style.marker_size * page.scale)


def _histogram_marks(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    """Bars of bin counts; a second series is overlaid translucently on the same bins."""
    frame, style = spec.frame, spec.style
    alpha = style.alpha if len(spec.table.series_names) > 1 else 1.0
    edge = style.edge_color if style.edge_color != "none" else style.background
    for s, row in enumerate(spec.table.values):
        for b, count in enumerate(histogram_counts(row, frame.bins)):
            if count:
                x0, x1 = axes.x(frame.bins[b], frame.x_range), axes.x(frame.bins[b + 1], frame.x_range)
                top = axes.y(count, frame.value_range)
                scene[("hist", s, b)] = Rect(x0, axes.y0, x1, top, style.colors[s], edge, 0.6 * page.scale, alpha)


def _box_marks(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    """Tukey box plots, one per series: box, median, whiskers with caps, and outliers."""
    frame, style = spec.frame, spec.style
    half = 0.35 * style.bar_width * axes.slot_size(frame.slots)
    y = functools.partial(axes.y, limits=frame.value_range)
    for s, row in enumerate(spec.table.values):
        stats, x = box_stats(row), axes.slot(s, frame.slots)
        scene[("box", s)] = Rect(
            x - half, y(stats.q1), x + half, y(stats.q3), style.colors[s], INK, page.scale, min(1.0, style.alpha + 0.25)
        )
        median = ((x - half, y(stats.median), x + half, y(stats.median)),)
        scene[("median", s)] = Segments(median, INK, 1.8 * page.scale, z=2.0)
        scene[("whiskers", s)] = Segments(
            (
                (x, y(stats.q3), x, y(stats.high)),
                (x, y(stats.q1), x, y(stats.low)),
                (x - half / 2, y(stats.high), x + half / 2, y(stats.high)),
                (x - half / 2, y(stats.low), x + half / 2, y(stats.low)),
            ),
            INK,
            page.scale,
            z=2.0,
        )
        if stats.fliers:
            scene[("fliers", s)] = Stroke(
                tuple(x for _ in stats.fliers),
                tuple(y(v) for v in stats.fliers),
                style.colors[s],
                0.0,
                "none",
                "circle",
                0.8 * style.marker_size * page.scale,
            )


def _heatmap_marks(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    """Coloured cells (rows = series, columns = category slots), optional cell values, and a colour bar."""
    frame, style = spec.frame, spec.style
    lo, hi = frame.value_range
    rows = len(spec.table.series_names)
    width, height = (axes.x1 - axes.x0) / frame.slots, (axes.y1 - axes.y0) / rows
    for s, row in enumerate(spec.table.values):
        for i, value in enumerate(row):
            slot = spec.first_slot + i
            face = page.shade(style.colormap, (value - lo) / (hi - lo))
            x0, y1 = axes.x0 + slot * width, axes.y1 - s * height
            # Whole pixels with a one-pixel gap: cells then share no pixel, so one changed cell redraws alone.
            scene[("cell", s, slot)] = Rect(round(x0), round(y1 - height), round(x0 + width) - 1, round(y1) - 1, face)
            if style.value_labels:
                color = INK if luminance(face) > 0.45 else "#ffffff"
                scene[("cell_label", s, slot)] = Label(
                    x0 + width / 2, y1 - height / 2, _value_text(value, frame.decimals), page.small, color, page.family
                )
    _colorbar(scene, spec, page, axes)


def _colorbar(scene: Scene, spec: ChartSpec, page: _Page, axes: _Axes) -> None:
    frame = spec.frame
    x0 = axes.x1 + page.pad
    x1 = x0 + 0.04 * page.width
    steps = 32
    for i in range(steps):
        y0 = round(axes.y0 + i * (axes.y1 - axes.y0) / steps)
        y1 = round(axes.y0 + (i + 1) * (axes.y1 - axes.y0) / steps)
        face = page.shade(spec.style.colormap, (i + 0.5) / steps)
        scene[("colorbar", i)] = Rect(round(x0), y0, round(x1), y1, face)
    ticks = [(axes.y(t, frame.value_range), text) for t, text in zip(frame.value_ticks, tick_texts(frame.value_ticks))]
    marks = tuple((x1, y, x1 + page.tick, y) for y, _ in ticks)
    scene[("colorbar_ticks",)] = Segments(marks, INK, 0.8 * page.scale)
    for i, (y, text) in enumerate(ticks):
        scene[("colorbar_label", i)] = Label(
            x1 + page.tick + 3, y, text, page.tick_text, INK, page.family, ha="left", z=AXIS_TEXT_Z
        )
    if spec.value_label:
        scene[("colorbar_title",)] = Label(
            page.width - page.pad,
            (axes.y0 + axes.y1) / 2,
            spec.value_label,
            page.text,
            INK,
            page.family,
            va="bottom",
            rotation=90.0,
            z=AXIS_TEXT_Z,
        )


def _pie(scene: Scene, spec: ChartSpec, page: _Page) -> None:
    """Slices (or ring segments) in table order from the start angle, with labels or a legend."""
    style = spec.style
    count, entry = _legend_count(spec), _legend_entry_width(spec, page)
    top = page.height - page.pad - _title_height(spec, page)
    left, right, bottom = page.pad, page.width - page.pad, page.pad
    legend, columns = (0.0, top), 1
    if count and style.legend_loc == "right":
        right -= entry + page.pad
        legend = (right + page.pad, (top + bottom) / 2 + count * page.row / 2)
    elif count:
        columns = max(1, min(count, int((right - left) // entry)))
        band = math.ceil(count / columns) * page.row
        if style.legend_loc == "top":
            legend, top = (left, top), top - band - page.pad / 2
        else:
            legend, bottom = (left, bottom + band), bottom + band + page.pad / 2
    radius = (0.46 if count else 0.34) * min(right - left, top - bottom)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    _slices(scene, spec, page, (cx, cy, radius))
    _legend(scene, spec, page, legend, columns)


def _slices(scene: Scene, spec: ChartSpec, page: _Page, circle: tuple[float, float, float]) -> None:
    style, values = spec.style, spec.table.values[0]
    cx, cy, radius = circle
    ring = style.donut_width * radius if spec.kind == "donut" else None
    edge = style.edge_color if style.edge_color != "none" else style.background
    total, angle = sum(values), style.start_angle
    for i, value in enumerate(values):
        slot, sweep = spec.first_slot + i, 360.0 * value / total
        theta1, theta2 = (angle - sweep, angle) if style.clockwise else (angle, angle + sweep)
        angle = theta1 if style.clockwise else theta2
        face = category_color(spec, i)
        scene[("slice", slot)] = Sector(cx, cy, radius, theta1, theta2, ring, face, edge, page.scale)
        middle = math.radians((theta1 + theta2) / 2)
        cos, sin = math.cos(middle), math.sin(middle)
        if style.value_labels and sweep >= 18:
            at = radius - ring / 2 if ring else 0.65 * radius
            color = INK if luminance(face) > 0.5 else "#ffffff"
            scene[("share", slot)] = Label(
                cx + at * cos, cy + at * sin, f"{100 * value / total:.0f}%", page.small, color, page.family
            )
        if style.pie_labels == "labels":
            scene[("slice_label", slot)] = Label(
                cx + 1.08 * radius * cos,
                cy + 1.08 * radius * sin,
                shown_label(spec.table.categories[i]),
                page.tick_text,
                INK,
                page.family,
                ha="left" if cos >= 0 else "right",
            )


def _legend(scene: Scene, spec: ChartSpec, page: _Page, origin: tuple[float, float], columns: int) -> None:
    """Legend entries at fixed cells (pie entries by slot), so that renaming or reordering moves nothing else."""
    entries = legend_entries(spec)
    if not entries:
        return
    style, count = spec.style, _legend_count(spec)
    entry, (x, top) = _legend_entry_width(spec, page), origin
    rows = math.ceil(count / columns)
    if style.legend_frame:
        scene[("legend_frame",)] = Rect(
            x - 3,
            top - rows * page.row - 3,
            x + columns * entry - page.pad + 3,
            top + 3,
            style.background,
            "#bbbbbb",
            0.8 * page.scale,
            z=3.8,
        )
    for position, text in enumerate(entries):
        cell = spec.first_slot + position if spec.kind in ("pie", "donut") else position
        left = x + (cell % columns) * entry
        middle = top - (cell // columns + 0.5) * page.row
        scene[("legend_mark", cell)] = _legend_mark(spec, page, position, (left, middle))
        scene[("legend_text", cell)] = Label(
            left + 1.6 * page.tick_text + 4,
            middle,
            shown_label(text),
            page.tick_text,
            INK,
            page.family,
            ha="left",
            z=4.0,
        )


def _legend_mark(spec: ChartSpec, page: _Page, position: int, at: tuple[float, float]) -> Primitive:
    """A colour swatch for filled marks, or a short stretch of line with its marker for lines."""
    style, (left, middle), width = spec.style, at, 1.6 * page.tick_text
    if spec.kind in ("pie", "donut"):
        color = category_color(spec, position)
    else:
        series = style.legend_order[position]
        color = style.colors[series]
        if spec.kind not in _PATCH_HANDLES:
            return Stroke(
                (left, left + width / 2, left + width),
                (middle, middle, middle),
                color,
                style.line_width * page.scale,
                style.linestyles[series],
                style.markers[series],
                style.marker_size * page.scale,
                z=4.0,
            )
    half = 0.35 * page.tick_text
    return Rect(left, middle - half, left + width, middle + half, color, z=4.0)


_MARKS = {
    "bar": _bar_marks,
    "barh": _bar_marks,
    "grouped_bar": _bar_marks,
    "stacked_bar": _bar_marks,
    "line": _line_marks,
    "area": _line_marks,
    "scatter": _scatter_marks,
    "histogram": _histogram_marks,
    "box": _box_marks,
    "heatmap": _heatmap_marks,
}


def drawing_order(scene: Scene, keys: Iterable[Key]) -> list[Primitive]:
    """Primitives of `keys` in drawing order: by z, then by their place in the scene."""
    wanted = set(keys)
    ranked = [(primitive.z, rank, key) for rank, (key, primitive) in enumerate(scene.items()) if key in wanted]
    return [scene[key] for _, _, key in sorted(ranked, key=lambda item: (item[0], item[1]))]


Box = tuple[float, float, float, float]
"""`(x0, y0, x1, y1)` in pixels, ends exclusive."""
BoxOf = Callable[[Label], Box]


def redraw_keys(first: Scene, second: Scene, measure: BoxOf) -> set[Key]:
    """Changed keys plus every unchanged primitive drawn above one of them and overlapping it.

    Drawing those over a base that lacks them reproduces the full draw exactly: anything drawn above a
    changed primitive is redrawn with it, and what lies below it is already in the base. Footprints are
    per segment, so that a changed line does not drag in everything inside its bounding box; texts are
    first judged by a generous estimate and measured with their font only when that estimate overlaps.
    """
    redraw = scene_changes(first, second)
    ranks = (_ranks(first), _ranks(second))
    below = [
        (side, ranks[side][key], _footprint(scene[key], measure))
        for side, scene in enumerate((first, second))
        for key in redraw
        if key in scene
    ]
    rough = {key: _footprint(primitive, _label_estimate) for key, primitive in first.items() if key not in redraw}

    def covers(key: Key, boxes: list[Box]) -> bool:
        return any(ranks[side][key] > rank and _overlap(boxes, others) for side, rank, others in below)

    grown = True
    while grown:
        grown = False
        for key, boxes in rough.items():
            if key in redraw or not covers(key, boxes):
                continue
            if isinstance(first[key], Label):
                boxes = rough[key] = [measure(first[key])]
                if not covers(key, boxes):
                    continue
            redraw.add(key)
            below.extend((side, ranks[side][key], boxes) for side in (0, 1))
            grown = True
    return redraw


def _label_estimate(label: Label) -> Box:
    """A box surely containing `label`: every glyph as wide as an em, lines 1.5 em apart."""
    lines = label.text.split("\n")
    width = max(len(line) for line in lines) * label.size + 4
    height = len(lines) * 1.5 * label.size + 4
    dx = {"left": -2.0, "center": -width / 2, "right": 2.0 - width}[label.ha]
    dy = {"bottom": -2.0, "center": -height / 2, "top": 2.0 - height}[label.va]
    cos, sin = math.cos(math.radians(label.rotation)), math.sin(math.radians(label.rotation))
    corners = [(dx + u, dy + v) for u in (0.0, width) for v in (0.0, height)]
    xs = [label.x + u * cos - v * sin for u, v in corners]
    ys = [label.y + u * sin + v * cos for u, v in corners]
    return min(xs), min(ys), max(xs), max(ys)


def _ranks(scene: Scene) -> dict[Key, tuple[float, int]]:
    return {key: (primitive.z, rank) for rank, (key, primitive) in enumerate(scene.items())}


def _overlap(first: list[Box], second: list[Box]) -> bool:
    if not _meets(_union(first), _union(second)):
        return False
    return any(_meets(a, b) for a in first for b in second)


def _meets(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _union(boxes: list[Box]) -> Box:
    if len(boxes) == 1:
        return boxes[0]
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _footprint(primitive: Primitive, label_box: BoxOf) -> list[Box]:
    """Pixel boxes surely covering everything the primitive paints, antialiasing included (1.5 px)."""
    if isinstance(primitive, Label):
        return [label_box(primitive)]
    if isinstance(primitive, Rect):
        exact = primitive.edge == "none" and all(
            float(v).is_integer() for v in (primitive.x0, primitive.y0, primitive.x1, primitive.y1)
        )
        grow = 0.0 if exact else primitive.edge_width * PX_PER_PT / 2 + 1.5
        return [(primitive.x0 - grow, primitive.y0 - grow, primitive.x1 + grow, primitive.y1 + grow)]
    if isinstance(primitive, Sector):
        grow = primitive.radius + primitive.edge_width * PX_PER_PT / 2 + 1.5
        return [(primitive.cx - grow, primitive.cy - grow, primitive.cx + grow, primitive.cy + grow)]
    if isinstance(primitive, Fill):
        xs, ys = [p[0] for p in primitive.points], [p[1] for p in primitive.points]
        return [(min(xs) - 1.5, min(ys) - 1.5, max(xs) + 1.5, max(ys) + 1.5)]
    if isinstance(primitive, Segments):
        grow = primitive.width * PX_PER_PT / 2 + 1.5
        return [_grown(x0, y0, x1, y1, grow) for x0, y0, x1, y1 in primitive.segments]
    # Markers carry a 1 pt outline beyond their size; round joins and projecting caps stay within width / 2.
    grow = max(primitive.width, primitive.marker_size + 1.0) * PX_PER_PT / 2 + 1.5
    points = list(zip(primitive.xs, primitive.ys))
    if primitive.style == "none" or len(points) == 1:
        return [_grown(x, y, x, y, grow) for x, y in points]
    return [_grown(*a, *b, grow) for a, b in zip(points, points[1:])]


def _grown(x0: float, y0: float, x1: float, y1: float, grow: float) -> Box:
    return min(x0, x1) - grow, min(y0, y1) - grow, max(x0, x1) + grow, max(y0, y1) + grow
