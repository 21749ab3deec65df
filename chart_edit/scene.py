"""Keyed plain-data drawing primitives in pixel coordinates, and which of them an edit redraws."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DPI = 100
"""Pixels per inch of the output: a point (line widths, font sizes) is DPI / 72 pixels."""
PX_PER_PT = DPI / 72


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


def scene_changes(first: Scene, second: Scene) -> set[Key]:
    """Keys of the primitives that differ between two scenes; empty means the edit is invisible."""
    return {key for key in first.keys() | second.keys() if first.get(key) != second.get(key)}


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
        (side, ranks[side][key], footprint(scene[key], measure))
        for side, scene in enumerate((first, second))
        for key in redraw
        if key in scene
    ]
    rough = {key: footprint(primitive, _label_estimate) for key, primitive in first.items() if key not in redraw}

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


def footprint(primitive: Primitive, label_box: BoxOf) -> list[Box]:
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
