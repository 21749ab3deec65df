"""Drawing chart scenes with matplotlib's Agg backend; the only module that imports matplotlib.

`chart_edit.layout` lays a spec out into a scene (`chart_edit.scene`): keyed, plain-data primitives in
pixel coordinates, where a key names what a primitive shows (`("bar", series, slot)`). Comparing the
civilian and spy scenes tells exactly which primitives an edit changed, so `ChartRenderer.render_pair`
draws everything unchanged once and then only the changed primitives for each image: the spy costs a
fraction of a full draw, and outside the change its pixels are the civilian's own bytes.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterable

import cv2
import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle, Wedge
from matplotlib.text import Text
from matplotlib.transforms import IdentityTransform

from chart_edit.layout import build_scene
from chart_edit.scene import (
    DPI,
    PX_PER_PT,
    Box,
    Fill,
    Label,
    Primitive,
    Rect,
    Scene,
    Segments,
    Stroke,
    drawing_order,
    redraw_keys,
)
from chart_edit.spec import ChartSpec

# rcParams that change how artists rasterise, pinned to matplotlib's defaults so that a user's
# matplotlibrc or another library's style cannot change the bytes of a render.
_PINNED_RC = {
    key: value
    for key, value in matplotlib.rcParamsDefault.items()
    if key.split(".")[0] in ("text", "path", "lines", "patch", "font", "hatch", "markers", "agg", "mathtext")
}
_PINNED_SAVEFIG = {key: value for key, value in matplotlib.rcParamsDefault.items() if key.startswith("savefig.")}
"""savefig's defaults (no tight bbox, figure colours), so that `render_png_naive` saves exactly the figure."""
_MARKER_CODES = {
    "none": "None",
    "circle": "o",
    "square": "s",
    "triangle": "^",
    "diamond": "D",
    "down triangle": "v",
    "plus": "P",
    "cross": "X",
    "star": "*",
}


class ChartRenderer:
    """Renders specs at one fixed size, reusing one Figure (keep one renderer per worker process)."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._figure = Figure(figsize=_figsize(width, height), dpi=DPI)
        self._canvas = FigureCanvasAgg(self._figure)
        self._artists: dict[Primitive, Artist] = {}

    def scene(self, spec: ChartSpec) -> Scene:
        """The scene of `spec` at this renderer's size, colormaps sampled with matplotlib."""
        return build_scene(spec, self.width, self.height, _scale_color)

    def render(self, spec: ChartSpec) -> np.ndarray:
        """`[H, W, 3]` uint8 image of `spec`, drawn in full."""
        scene = self.scene(spec)
        self._artists.clear()
        with matplotlib.rc_context(_PINNED_RC):
            self._draw_base(spec.style.background, drawing_order(scene, scene.keys()))
        return self._pixels()

    def render_pair(self, civilian: ChartSpec, spy: ChartSpec) -> tuple[np.ndarray, np.ndarray]:
        """Both images, byte-identical to `render` of each, drawing the shared primitives only once.

        Steps: (1) draw every primitive that is the same in both scenes and that nothing changed lies
        under; (2) save that base; (3) draw the civilian's remaining primitives; (4) restore the base
        and draw the spy's.
        """
        civilian_scene, spy_scene = self.scene(civilian), self.scene(spy)
        self._artists.clear()
        with matplotlib.rc_context(_PINNED_RC):
            redraw = redraw_keys(civilian_scene, spy_scene, self._label_box)
            base = [key for key in civilian_scene if key not in redraw]
            self._draw_base(civilian.style.background, drawing_order(civilian_scene, base))
            saved = self._canvas.copy_from_bbox(self._figure.bbox)
            self._draw_over(drawing_order(civilian_scene, redraw))
            civilian_pixels = self._pixels()
            self._canvas.restore_region(saved)
            self._draw_over(drawing_order(spy_scene, redraw))
        return civilian_pixels, self._pixels()

    def _artist(self, primitive: Primitive) -> Artist:
        """The artist of `primitive`, made once per render: measuring a text then drawing it reuses its layout."""
        artist = self._artists.get(primitive)
        if artist is None:
            artist = self._artists[primitive] = _artist(primitive)
            artist.set_figure(self._figure)
        return artist

    def _label_box(self, label: Label) -> Box:
        """Where `label` paints, measured with its font."""
        extent = self._artist(label).get_window_extent(self._canvas.get_renderer())
        return extent.x0 - 2, extent.y0 - 2, extent.x1 + 2, extent.y1 + 2

    def _draw_base(self, background: str, primitives: Iterable[Primitive]) -> None:
        self._figure.clear()
        _fill_figure(self._figure, background, (self._artist(primitive) for primitive in primitives))
        self._canvas.draw()

    def _draw_over(self, primitives: Iterable[Primitive]) -> None:
        renderer = self._canvas.get_renderer()
        for primitive in primitives:
            self._artist(primitive).draw(renderer)

    def _pixels(self) -> np.ndarray:
        rgba = np.asarray(self._canvas.buffer_rgba())
        return cv2.cvtColor(rgba[: self.height, : self.width], cv2.COLOR_RGBA2RGB)


def render_png_naive(spec: ChartSpec, width: int, height: int) -> bytes:
    """PNG bytes of `spec`: the benchmark's naive baseline, not used for generation.

    It exists to time the way most chart-pair scripts work: every call makes a new pyplot figure, draws the
    full scene, saves it and closes the figure. The PNG is exactly `width` x `height` and decodes to the
    pixels of `ChartRenderer.render`.
    """
    import matplotlib.pyplot as plt  # Here only: generation never touches pyplot's global figure manager.

    scene = build_scene(spec, width, height, _scale_color)
    buffer = io.BytesIO()
    with matplotlib.rc_context({**_PINNED_RC, **_PINNED_SAVEFIG}):
        fig = plt.figure(figsize=_figsize(width, height), dpi=DPI)
        artists = [_artist(primitive) for primitive in drawing_order(scene, scene.keys())]
        _fill_figure(fig, spec.style.background, artists)
        fig.savefig(buffer, format="png", dpi=DPI)
        plt.close(fig)
    return buffer.getvalue()


def _figsize(width: int, height: int) -> tuple[float, float]:
    """Figure inches for `width` x `height` pixels at DPI, with a quarter pixel of slack: figsize * dpi may
    otherwise round down to width - 1 (the canvas truncates to whole pixels)."""
    return (width + 0.25) / DPI, (height + 0.25) / DPI


def _fill_figure(figure: Figure, background: str, artists: Iterable[Artist]) -> None:
    figure.patch.set_facecolor(background)
    for artist in artists:
        figure.add_artist(artist)


@functools.lru_cache(maxsize=16)
def _colormap(name: str) -> Colormap:
    return matplotlib.colormaps[name]


@functools.lru_cache(maxsize=4096)
def _scale_color(name: str, fraction: float) -> str:
    """`#rrggbb` of colormap `name` at `fraction` in [0, 1] (scenes are built several times per pair)."""
    return to_hex(_colormap(name)(fraction))


@functools.lru_cache(maxsize=8)
def _font_families(family: str) -> list[str]:
    """`family` alone, or with DejaVu Sans behind it for glyphs STIX lacks (e.g. the subscript in CO₂)."""
    return [family] if family.startswith("DejaVu") else [family, "DejaVu Sans"]


def _artist(primitive: Primitive) -> Artist:
    """The matplotlib artist drawing `primitive` in pixel coordinates."""
    pixels = IdentityTransform()
    if isinstance(primitive, Rect):
        artist: Artist = Rectangle(
            (primitive.x0, primitive.y0),
            primitive.x1 - primitive.x0,
            primitive.y1 - primitive.y0,
            facecolor=primitive.face,
            edgecolor=primitive.edge,
            linewidth=primitive.edge_width,
            alpha=primitive.alpha,
        )
    elif isinstance(primitive, Fill):
        artist = Polygon(
            primitive.points,
            closed=True,
            facecolor=primitive.face,
            edgecolor="none",
            linewidth=0.0,
            alpha=primitive.alpha,
        )
    elif isinstance(primitive, Stroke):
        artist = Line2D(
            primitive.xs,
            primitive.ys,
            color=primitive.color,
            linewidth=primitive.width,
            linestyle="None" if primitive.style == "none" else primitive.style,
            marker=_MARKER_CODES[primitive.marker],
            markersize=primitive.marker_size,
        )
    elif isinstance(primitive, Segments):
        xs = [v for s in primitive.segments for v in (s[0], s[2], math.nan)]
        ys = [v for s in primitive.segments for v in (s[1], s[3], math.nan)]
        artist = Line2D(xs, ys, color=primitive.color, linewidth=primitive.width, solid_capstyle="butt")
    elif isinstance(primitive, Label):
        artist = Text(
            primitive.x,
            primitive.y,
            primitive.text,
            color=primitive.color,
            fontsize=primitive.size / PX_PER_PT,
            fontfamily=_font_families(primitive.family),
            fontweight=primitive.weight,
            ha=primitive.ha,
            va=primitive.va,
            rotation=primitive.rotation,
            rotation_mode="anchor",
            parse_math=False,
        )
    else:
        artist = Wedge(
            (primitive.cx, primitive.cy),
            primitive.radius,
            primitive.theta1,
            primitive.theta2,
            width=primitive.ring,
            facecolor=primitive.face,
            edgecolor=primitive.edge,
            linewidth=primitive.edge_width,
        )
    artist.set_transform(pixels)
    artist.set_zorder(primitive.z)
    return artist
