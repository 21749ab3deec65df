"""Mark builders: the bars, lines, points, boxes, cells and slices of each chart kind."""

from __future__ import annotations

import functools
import math

from chart_edit.geometry import AXIS_TEXT_Z, INK, Axes, Page, legend_count, reserve_legend, title_height
from chart_edit.scene import Fill, Label, Rect, Scene, Sector, Segments, Stroke
from chart_edit.spec import ChartSpec, box_stats, category_color, histogram_counts, shown_label, tick_texts
from chart_edit.style import luminance


def _value_text(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}".replace("-", "\u2212")


def _bar_marks(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
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
    spec: ChartSpec, page: Page, rect: Rect, value: float, *, horizontal: bool, inside: bool
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


def _line_marks(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
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


def _scatter_marks(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
    frame, style = spec.frame, spec.style
    xs = tuple(axes.x(v, frame.x_range) for v in spec.table.values[0])
    ys = tuple(axes.y(v, frame.value_range) for v in spec.table.values[1])
    scene[("points",)] = Stroke(xs, ys, style.colors[0], 0.0, "none", style.markers[0], style.marker_size * page.scale)


def _histogram_marks(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
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


def _box_marks(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
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


def _heatmap_marks(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
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


def _colorbar(scene: Scene, spec: ChartSpec, page: Page, axes: Axes) -> None:
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


def pie(scene: Scene, spec: ChartSpec, page: Page) -> tuple[tuple[float, float], int]:
    """Slices (or ring segments) in table order from the start angle, with their labels.

    Returns where the caller draws the legend, if any: its top-left origin and its number of columns.
    """
    top = page.height - page.pad - title_height(spec, page)
    space = reserve_legend(spec, page, page.pad, page.width - page.pad, page.pad, top, centred=True)
    radius = (0.46 if legend_count(spec) else 0.34) * min(space.right - space.left, space.top - space.bottom)
    cx, cy = (space.left + space.right) / 2, (space.top + space.bottom) / 2
    _slices(scene, spec, page, (cx, cy, radius))
    return space.origin, space.columns


def _slices(scene: Scene, spec: ChartSpec, page: Page, circle: tuple[float, float, float]) -> None:
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


MARKS = {
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
