"""Laying a chart spec out into a scene: page and axes geometry, title, ticks, legend, and the marks placed in them."""

from __future__ import annotations

import math

from chart_edit.geometry import (
    AXIS_TEXT_Z,
    INK,
    Axes,
    Page,
    legend_count,
    legend_entry_width,
    reserve_legend,
    text_width,
    title_height,
)
from chart_edit.marks import MARKS, pie
from chart_edit.scene import PX_PER_PT, Label, Primitive, Rect, Scene, Segments, Shade, Stroke
from chart_edit.spec import (
    ChartSpec,
    category_color,
    category_label_shown,
    label_step,
    legend_entries,
    shown_label,
    tick_texts,
)

_CATEGORY_X = ("bar", "grouped_bar", "stacked_bar", "line", "area", "box", "heatmap")
_PATCH_HANDLES = ("grouped_bar", "stacked_bar", "area", "histogram", "pie", "donut")


def build_scene(spec: ChartSpec, width: int, height: int, shade: Shade) -> Scene:
    """The primitives that draw `spec` at `width` x `height`, keyed by what they show."""
    scale = min(max(min(width / 640, height / 480), 0.45), 3.0)
    page = Page(width, height, spec.style.font_family, spec.style.font_size * PX_PER_PT * scale, scale, shade)
    scene: Scene = {}
    if spec.title:
        _title(scene, spec, page)
    if spec.kind in ("pie", "donut"):
        origin, columns = pie(scene, spec, page)
        _legend(scene, spec, page, origin, columns)
        return scene
    axes = _layout(spec, page)
    _axes_decor(scene, spec, page, axes)
    MARKS[spec.kind](scene, spec, page, axes)
    _legend(scene, spec, page, (axes.legend_x, axes.legend_top), axes.legend_columns)
    return scene


def _title(scene: Scene, spec: ChartSpec, page: Page) -> None:
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


def _axis_titles(spec: ChartSpec) -> tuple[str, str]:
    """The (x-axis, y-axis) label texts; a heatmap's value label titles its colour bar instead."""
    if spec.kind == "barh":
        return spec.value_label, spec.category_label
    if spec.kind == "heatmap":
        return spec.category_label, ""
    return spec.category_label, spec.value_label


def _layout(spec: ChartSpec, page: Page) -> Axes:
    """Fixed margins from character counts in the shared frame, never from measured text, so both images agree."""
    x_title, y_title = _axis_titles(spec)
    top = page.height - page.pad - title_height(spec, page)
    left = page.pad + (1.4 * page.text if y_title else 0.0) + _y_tick_width(spec, page) + page.tick + 3
    right = page.width - page.pad - _right_extra(spec, page)
    space = reserve_legend(spec, page, left, right, page.pad, top, centred=False)
    left, right, bottom, top = space.left, space.right, space.bottom, space.top
    legend, columns = space.origin, space.columns
    x_label_y = bottom
    bottom += 1.4 * page.text if x_title else 0.0
    rotate, label_height, overhang = _x_tick_extent(spec, page, right - left)
    left = max(left, page.pad + overhang)
    bottom += page.tick + 3 + label_height
    return Axes(left, bottom, max(right, left + 10), max(top, bottom + 10), rotate, x_label_y, *legend, columns)


def _y_tick_width(spec: ChartSpec, page: Page) -> float:
    frame = spec.frame
    if spec.kind == "barh":
        return text_width(frame.label_chars, page.tick_text)
    if spec.kind == "heatmap":
        return text_width(frame.legend_chars, page.tick_text)
    return text_width(max(len(t) for t in tick_texts(frame.value_ticks)), page.tick_text)


def _right_extra(spec: ChartSpec, page: Page) -> float:
    """Room right of the plot: half a tick label, or a heatmap's colour bar with its ticks and title."""
    if spec.kind != "heatmap":
        return text_width(2, page.tick_text)
    ticks = max((len(t) for t in tick_texts(spec.frame.value_ticks)), default=0)
    title = 1.4 * page.text if spec.value_label else 0.0
    return 0.04 * page.width + page.pad + page.tick + 3 + text_width(ticks, page.tick_text) + title


def _x_tick_extent(spec: ChartSpec, page: Page, plot_width: float) -> tuple[bool, float, float]:
    """Whether x labels are slanted, their height, and how far the first one reaches left of the plot."""
    if spec.kind not in _CATEGORY_X:
        return False, 1.3 * page.tick_text, 0.0
    step = 1 if spec.kind == "box" else label_step(spec.frame)
    width = text_width(spec.frame.label_chars, page.tick_text)
    slot = plot_width / spec.frame.slots
    if width <= 0.95 * slot * step:
        return False, 1.3 * page.tick_text, 0.0
    return True, 0.71 * width + page.tick_text, 0.71 * width - slot / 2


def _axes_decor(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
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
    scene: Scene, spec: ChartSpec, page: Page, axes: Axes, ticks: list[tuple[object, float, str]], *, vertical: bool
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


def _x_ticks(spec: ChartSpec, axes: Axes) -> list[tuple[object, float, str]]:
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


def _y_ticks(spec: ChartSpec, axes: Axes) -> list[tuple[object, float, str]]:
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


def _legend(scene: Scene, spec: ChartSpec, page: Page, origin: tuple[float, float], columns: int) -> None:
    """Legend entries at fixed cells (pie entries by slot), so that renaming or reordering moves nothing else."""
    entries = legend_entries(spec)
    if not entries:
        return
    style, count = spec.style, legend_count(spec)
    entry, (x, top) = legend_entry_width(spec, page), origin
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


def _legend_mark(spec: ChartSpec, page: Page, position: int, at: tuple[float, float]) -> Primitive:
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
