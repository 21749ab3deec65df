"""How a chart looks, independent of its data: palettes, fonts, markers, and sampling one style per item.

Everything here is plain data (hex colours, readable names) so that a style serialises into a pair's
`meta` and the renderer is the only place that knows matplotlib's spelling of it.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Real named palettes (matplotlib's qualitative colormaps, Okabe & Ito 2008, CARTO "Bold"); each has at
# least 8 colours so that a pie of 7 slices plus one added slice never repeats a colour.
PALETTES: dict[str, tuple[str, ...]] = {
    "tab10": (
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ),
    "Set2": ("#66c2a5", "#fc8d62", "#8da0cb", "#e78ac3", "#a6d854", "#ffd92f", "#e5c494", "#b3b3b3"),
    "Dark2": ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"),
    "Set1": ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628", "#f781bf", "#999999"),
    "Paired": (
        "#a6cee3",
        "#1f78b4",
        "#b2df8a",
        "#33a02c",
        "#fb9a99",
        "#e31a1c",
        "#fdbf6f",
        "#ff7f00",
        "#cab2d6",
        "#6a3d9a",
        "#ffff99",
        "#b15928",
    ),
    "Okabe-Ito": ("#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#000000"),
    "CARTO Bold": ("#7f3c8d", "#11a579", "#3969ac", "#f2b701", "#e73f74", "#80ba5a", "#e68310", "#008695"),
}
# Heatmap colour scales, resolved by name in the renderer.
COLORMAPS = ("viridis", "magma", "cividis", "YlGnBu", "Blues", "OrRd", "PuBuGn")
# Fonts matplotlib ships, so that every machine renders the same glyphs.
FONT_FAMILIES = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "STIXGeneral")
MARKERS = ("circle", "square", "triangle", "diamond", "down triangle", "plus", "cross", "star")
LINESTYLES = ("solid", "dashed", "dotted", "dashdot")
LEGEND_LOCATIONS = ("right", "top", "bottom")
# Subtle off-whites: visible variety without hurting contrast.
BACKGROUNDS = ("#ffffff", "#ffffff", "#fbfbf8", "#f7f9fc", "#fcfaf5", "#f8f8f8")
PLOT_BACKGROUNDS = ("same", "same", "#eaeaf2", "#f0f0f0")

_HUE_NAMES = (
    (15, "red"),
    (40, "orange"),
    (65, "yellow"),
    (165, "green"),
    (195, "teal"),
    (255, "blue"),
    (290, "purple"),
    (340, "pink"),
    (360, "red"),
)


@dataclass(frozen=True)
class Style:
    """Every look-and-feel choice of one chart; civilian and spy share it except where an edit changes it.

    Attributes:
        palette: name of the palette the colours were taken from.
        colors: `#rrggbb` per series (per category slot for pie and donut).
        colormap: heatmap colour scale name.
        font_family: one of `FONT_FAMILIES`.
        font_size: base text size in points at 640x480; the renderer scales it with the output size.
        show_title: whether the title is drawn.
        title_align: "center" or "left".
        grid: whether value-axis gridlines are drawn.
        spines: "box" (four sides), "open" (left and bottom) or "none".
        legend_loc: one of `LEGEND_LOCATIONS`; used when a legend is drawn.
        legend_frame: whether the legend has a box around it.
        value_labels: whether values are written on the marks (bars, slices, cells).
        bar_width: fraction of a category slot a bar group fills.
        markers: per series, a name from `MARKERS` or "none".
        linestyles: per series, a name from `LINESTYLES`.
        line_width: line width in points.
        marker_size: marker size in points.
        legend_order: series indices in the order the legend lists them.
        background: figure background colour.
        plot_background: plot-area colour, or "same" as the background.
        alpha: fill opacity of areas and overlaid histograms.
        edge_color: outline of bars and slices, or "none".
        pie_labels: "legend" or "labels" (category names next to the slices).
        start_angle: angle of the first slice's start, degrees counter-clockwise from 3 o'clock.
        clockwise: whether slices follow each other clockwise.
        donut_width: ring width as a fraction of the radius.
    """

    palette: str
    colors: tuple[str, ...]
    colormap: str
    font_family: str
    font_size: float
    show_title: bool
    title_align: str
    grid: bool
    spines: str
    legend_loc: str
    legend_frame: bool
    value_labels: bool
    bar_width: float
    markers: tuple[str, ...]
    linestyles: tuple[str, ...]
    line_width: float
    marker_size: float
    legend_order: tuple[int, ...]
    background: str
    plot_background: str
    alpha: float
    edge_color: str
    pie_labels: str
    start_angle: float
    clockwise: bool
    donut_width: float

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form, stored in a pair's `meta`."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Style:
        """Inverse of `to_json`."""
        tuples = {"colors", "markers", "linestyles", "legend_order"}
        return cls(**{key: tuple(value) if key in tuples else value for key, value in data.items()})


def sample_style(
    rng: np.random.Generator, *, num_colors: int, num_series: int, value_labels_fit: bool, need_markers: bool
) -> Style:
    """One random style.

    Args:
        rng: the only source of randomness.
        num_colors: colours needed (series count, or category slots for pies), at most 8.
        num_series: series drawn, for per-series markers, line styles and legend order.
        value_labels_fit: whether the chart has few enough marks for value labels to stay legible.
        need_markers: whether points are drawn only as markers (scatter), so markers cannot be "none".
    """
    palette = str(rng.choice(list(PALETTES)))
    markers = rng.choice(MARKERS, size=num_series, replace=False)
    varied_lines = num_series <= len(LINESTYLES) and rng.random() < 0.4
    linestyles = rng.permutation(LINESTYLES)[:num_series] if varied_lines else ["solid"] * num_series
    # Stacked charts often list the legend top-down, i.e. reversed.
    order = tuple(range(num_series))[:: -1 if rng.random() < 0.2 else 1]
    return Style(
        palette=palette,
        colors=PALETTES[palette][:num_colors],
        colormap=str(rng.choice(COLORMAPS)),
        font_family=str(rng.choice(FONT_FAMILIES)),
        font_size=float(rng.choice((8.5, 9.0, 9.5, 10.0, 10.5, 11.0))),
        show_title=bool(rng.random() < 0.85),
        title_align=str(rng.choice(("center", "left"))),
        grid=bool(rng.random() < 0.6),
        spines=str(rng.choice(("open", "open", "box", "none"))),
        legend_loc=str(rng.choice(LEGEND_LOCATIONS)),
        legend_frame=bool(rng.random() < 0.4),
        value_labels=bool(value_labels_fit and rng.random() < 0.5),
        bar_width=float(np.round(rng.uniform(0.55, 0.85), 2)),
        markers=tuple(str(m) for m in markers) if need_markers or rng.random() < 0.75 else ("none",) * num_series,
        linestyles=tuple(str(s) for s in linestyles),
        line_width=float(rng.choice((1.5, 2.0, 2.5))),
        marker_size=float(rng.choice((5.0, 6.0, 7.0))),
        legend_order=order,
        background=str(rng.choice(BACKGROUNDS)),
        plot_background=str(rng.choice(PLOT_BACKGROUNDS)),
        alpha=float(np.round(rng.uniform(0.45, 0.7), 2)),
        edge_color=str(rng.choice(("none", "none", "#ffffff", "#333333"))),
        pie_labels=str(rng.choice(("legend", "labels"))),
        start_angle=float(rng.choice((90.0, 0.0, 45.0))),
        clockwise=bool(rng.random() < 0.6),
        donut_width=float(np.round(rng.uniform(0.3, 0.5), 2)),
    )


def hex_to_rgb(color: str) -> tuple[float, float, float]:
    """`#rrggbb` as three floats in [0, 1]."""
    return int(color[1:3], 16) / 255, int(color[3:5], 16) / 255, int(color[5:7], 16) / 255


def color_name(color: str) -> str:
    """A plain English name for `#rrggbb` ("blue", "dark orange", "grey"), for descriptions people can check."""
    hue, lightness, saturation = colorsys.rgb_to_hls(*hex_to_rgb(color))
    if saturation < 0.2 or (lightness < 0.15 or lightness > 0.92):
        return "black" if lightness < 0.2 else "white" if lightness > 0.92 else "grey"
    degrees = hue * 360
    name = next(label for limit, label in _HUE_NAMES if degrees < limit)
    if name in ("orange", "red") and lightness < 0.35:
        return "brown"
    return f"light {name}" if lightness > 0.72 else f"dark {name}" if lightness < 0.3 else name


def color_distance(a: str, b: str) -> float:
    """Euclidean distance of two colours in 0..255 RGB; above ~120 two marks are told apart at a glance."""
    return float(np.linalg.norm((np.array(hex_to_rgb(a)) - np.array(hex_to_rgb(b))) * 255))


def luminance(color: str) -> float:
    """Relative luminance in [0, 1], to choose dark or light text over a fill."""
    r, g, b = hex_to_rgb(color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
