"""Page and plot geometry shared by the layout and the marks: sizes, anchors, text metrics and ink."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chart_edit.scene import Shade
from chart_edit.spec import ChartSpec, legend_entries

CHAR_WIDTH = 0.6
"""Average glyph advance in ems of the shipped fonts, used to reserve margins for a number of characters."""
INK = "#333333"
AXIS_TEXT_Z = 0.25
"""Titles, tick labels and axis titles lie outside the plot and overlap no mark, so drawing them first
changes no pixel, and a changed mark (a bar, a spine) then never forces them to be redrawn."""


@dataclass(frozen=True)
class Page:
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
class Axes:
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


def title_height(spec: ChartSpec, page: Page) -> float:
    return (spec.title.count("\n") + 1) * 1.2 * page.text * 1.25 + page.pad if spec.title else 0.0


def text_width(chars: int, size: float) -> float:
    return chars * size * CHAR_WIDTH


def legend_count(spec: ChartSpec) -> int:
    """Legend rows to reserve: pies reserve every slot of the shared frame, so entries never move."""
    if not legend_entries(spec):
        return 0
    return spec.frame.slots if spec.kind in ("pie", "donut") else len(spec.table.series_names)


def legend_entry_width(spec: ChartSpec, page: Page) -> float:
    return 2.2 * page.tick_text + text_width(spec.frame.legend_chars, page.tick_text) + page.pad


@dataclass(frozen=True)
class LegendSpace:
    """Where a legend goes, and the box left for the chart once room for it is taken."""

    origin: tuple[float, float]
    columns: int
    left: float
    right: float
    bottom: float
    top: float


def reserve_legend(
    spec: ChartSpec, page: Page, left: float, right: float, bottom: float, top: float, *, centred: bool
) -> LegendSpace:
    """Take room for the legend out of the box: a column at the right, or rows at the top or bottom.

    A legend at the right starts level with the box's top, or, with `centred` (pies), sits halfway down.
    """
    count, entry = legend_count(spec), legend_entry_width(spec, page)
    origin, columns = (0.0, top), 1
    if count and spec.style.legend_loc == "right":
        right -= entry + page.pad
        origin = (right + page.pad, (top + bottom) / 2 + count * page.row / 2 if centred else top)
    elif count:
        columns = max(1, min(count, int((right - left) // entry)))
        band = math.ceil(count / columns) * page.row
        if spec.style.legend_loc == "top":
            origin, top = (left, top), top - band - page.pad / 2
        else:
            origin, bottom = (left, bottom + band), bottom + band + page.pad / 2
    return LegendSpace(origin, columns, left, right, bottom, top)
