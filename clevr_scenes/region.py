"""Where in the image an edit can show: the changed objects, their shadows and their reflections.

The spy image is the civilian image with only these regions re-rendered, so they must hold every pixel the
edit can visibly change. They are computed from the scene graphs alone (no render), each as the screen
rectangle of some 3D points: each changed object's hull before and after the edit with the ground around it
(contact shadow, colour bleeding); when its geometry changed (shape, size, place, presence), that hull with
its shadow cast from the four corners of each lamp; and the objects near it that can mirror it (metal ones)
or that it lights (all, when it is metal). `tests/test_clevr_render.py` and `bench/bench_clevr.py` check
them against full re-renders of the spy.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from clevr_scenes.camera import Camera
from clevr_scenes.scene import Scene, SceneObject

LAMP_SIZE = 1.0
"""Edge of the square area lamps the renderer builds; shadows are cast from each lamp's four corners."""
BLEED = 0.5
"""Ground around an object (Blender units) that its contact shadow and reflected colour reach."""
REFLECTION_RANGE = 3.0
"""Objects whose footprint comes this close to a changed object's may mirror it (or, if it is metal, catch the
light it reflects)."""
GEOMETRY = ("shape", "size", "x", "y", "rotation")
"""Attributes whose change moves a shadow; colour and material leave it in place."""
MARGIN_FRACTION = 0.02
"""Extra border, as a fraction of the larger image side, for soft shadow tails and antialiasing."""
HULL_SEGMENTS = 16
"""Points per ring of a round object's hull."""
RENDER_OVERHEAD = 0.03
"""The fixed cost of one render, as a fraction of the frame's pixels (decides when two regions merge)."""
MIN_SHADOW_CLEARANCE = 0.05
"""A lamp less than this above an object's top would cast an unbounded shadow: the region is the frame."""


@dataclass(frozen=True)
class Region:
    """A pixel rectangle `[x0, x1) x [y0, y1)`, origin at the top-left like numpy's `[y, x]`."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """`image[region.slices]` is the region's pixels."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def area(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def grown(self, pixels: int, width: int, height: int) -> Region:
        """This region with `pixels` more on every side, clipped to a `width` x `height` frame."""
        return Region(
            max(0, self.x0 - pixels),
            max(0, self.y0 - pixels),
            min(width, self.x1 + pixels),
            min(height, self.y1 + pixels),
        )

    def within(self, outer: Region) -> tuple[slice, slice]:
        """Slices selecting this region inside an image of `outer` (which contains it)."""
        return slice(self.y0 - outer.y0, self.y1 - outer.y0), slice(self.x0 - outer.x0, self.x1 - outer.x0)

    def to_json(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


def changed_ids(civilian: Scene, spy: Scene) -> tuple[int, ...]:
    """Ids of objects added, removed or changed in any way between the two scenes, ascending."""
    before = {obj.id: obj for obj in civilian.objects}
    after = {obj.id: obj for obj in spy.objects}
    return tuple(sorted(i for i in before.keys() | after.keys() if before.get(i) != after.get(i)))


def spy_regions(civilian: Scene, spy: Scene, width: int, height: int) -> list[Region]:
    """Rectangles of a `width` x `height` image holding every pixel the edits can change; [] if none.

    Each changed object's state, shadow and lit neighbour gets its own rectangle (a render costs in
    proportion to its area); rectangles inside another are dropped, and two are replaced by their bounding
    rectangle when it costs no more than both. The rest may overlap: each one's renders are of the whole
    edited scene and so hold every change on its pixels.

    Raises:
        ValueError: the two scenes are seen by different cameras or lit by different lamps (then every
            pixel changes and there is no local region).
    """
    if civilian.camera != spy.camera or civilian.lights != spy.lights:
        raise ValueError("spy_regions needs the same camera and lamps in both scenes")
    ids = changed_ids(civilian, spy)
    reshaped = set(_reshaped(civilian, spy, ids))
    lamps = [np.asarray(position) for position in civilian.lights.to_json().values()]
    parts: list[np.ndarray] = []
    for object_id in ids:
        states = [scene.object(object_id) for scene in (civilian, spy) if object_id in scene.ids()]
        parts += [np.concatenate([_hull(obj), _ground_ring(obj)]) for obj in states]
        if object_id in reshaped:
            for obj, lamp in itertools.product(states, lamps):
                shadow = _shadow_points(obj, lamp)
                if shadow is None:
                    return [Region(0, 0, width, height)]
                parts.append(np.concatenate([_hull(obj), shadow]))
        parts += [_hull(obj) for obj in _neighbours_lit(states, (civilian, spy), set(ids))]
    regions = [_bounding(civilian.camera, part, width, height) for part in parts]
    return _merged([region for region in regions if region is not None], overhead=RENDER_OVERHEAD * width * height)


def _bounding(camera: Camera, points: np.ndarray, width: int, height: int) -> Region | None:
    """The pixel rectangle holding `points` ([N, 3] world) with a margin; the frame if one is behind the camera."""
    projected = camera.project(points, width, height)
    if (projected[:, 2] <= 0).any():
        return Region(0, 0, width, height)
    margin = MARGIN_FRACTION * max(width, height)
    x0, y0 = np.floor(projected[:, :2].min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(projected[:, :2].max(axis=0) + margin).astype(int)
    region = Region(max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
    return region if region.x0 < region.x1 and region.y0 < region.y1 else None


def _merged(regions: list[Region], overhead: float) -> list[Region]:
    """`regions` with every pair whose bounding rectangle costs no more than the two replaced by it.

    A render costs its area plus `overhead` (in pixels: scene sync, denoiser set-up, file output).
    """
    distinct = list(dict.fromkeys(regions))
    regions = [region for region in distinct if not _covered(region, [other for other in distinct if other != region])]
    merging = True
    while merging:
        merging = False
        for i, j in itertools.combinations(range(len(regions)), 2):
            a, b = regions[i], regions[j]
            bound = Region(min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1))
            if bound.area <= a.area + b.area + overhead:
                regions[i] = bound
                del regions[j]
                merging = True
                break
    return sorted(regions, key=lambda region: (region.y0, region.x0))


def _covered(region: Region, others: list[Region]) -> bool:
    """Whether one of `others` contains `region`."""
    return any(
        other.x0 <= region.x0 and other.y0 <= region.y0 and region.x1 <= other.x1 and region.y1 <= other.y1
        for other in others
    )


def _hull(obj: SceneObject) -> np.ndarray:
    """`[N, 3]` points whose convex hull holds `obj`: what it covers on screen and what casts its shadow.

    A cube's 8 corners as rotated; for round shapes, rings of HULL_SEGMENTS points pushed out so that the
    polygon through them circumscribes the circle.
    """
    s = obj.scale
    if obj.shape == "cube":
        angle = math.radians(obj.rotation)
        turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        corners = np.array([(dx * s, dy * s) for dx in (-1, 1) for dy in (-1, 1)]) @ turn.T
        return np.array([(obj.x + cx, obj.y + cy, z) for cx, cy in corners for z in (0.0, 2.0 * s)])
    angles = np.linspace(0.0, 2.0 * math.pi, HULL_SEGMENTS, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1) / math.cos(math.pi / HULL_SEGMENTS)
    if obj.shape == "cylinder":
        levels = [(0.0, s), (2.0 * s, s)]
    else:
        # The octagon circumscribing the sphere's vertical section, revolved: rings at tan(22.5 deg) = 0.414.
        t = math.tan(math.pi / 8)
        levels = [(0.0, t * s), (s - t * s, s), (s + t * s, s), (2.0 * s, t * s)]
    return np.array([(obj.x + r * cx, obj.y + r * cy, z) for z, r in levels for cx, cy in ring])


def _ground_ring(obj: SceneObject) -> np.ndarray:
    """`[4, 3]` ground corners of the square `BLEED` beyond `obj`'s footprint (contact shadow, bled colour)."""
    reach = obj.radius + BLEED
    return np.array([(obj.x + dx * reach, obj.y + dy * reach, 0.0) for dx in (-1, 1) for dy in (-1, 1)])


def _shadow_points(obj: SceneObject, lamp: np.ndarray) -> np.ndarray | None:
    """`[K, 3]` ground points of the shadow of `obj`'s hull cast from the 4 corners of `lamp`, a square of side
    LAMP_SIZE facing the origin as the renderer turns it; None if the shadow is unbounded."""
    hull = _hull(obj)
    raised = hull[hull[:, 2] > 0]
    forward = -lamp / np.linalg.norm(lamp)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    corners = [lamp + LAMP_SIZE / 2 * (a * right + b * up) for a, b in itertools.product((-1, 1), repeat=2)]
    if min(corner[2] for corner in corners) - raised[:, 2].max() < MIN_SHADOW_CLEARANCE:
        return None
    shadows = []
    for source in corners:
        # The ray from the lamp through a hull point meets the ground at t = source_z / (source_z - z).
        t = source[2] / (source[2] - raised[:, 2:3])
        shadows.append(source + t * (raised - source))
    ground = np.concatenate(shadows)
    ground[:, 2] = 0.0
    return ground


def _reshaped(civilian: Scene, spy: Scene, ids: tuple[int, ...]) -> list[int]:
    """The changed ids whose shadow can move: added, removed, or changed in a GEOMETRY attribute."""
    moved = []
    for object_id in ids:
        if object_id not in civilian.ids() or object_id not in spy.ids():
            moved.append(object_id)
            continue
        before, after = civilian.object(object_id), spy.object(object_id)
        if any(getattr(before, name) != getattr(after, name) for name in GEOMETRY):
            moved.append(object_id)
    return moved


def _neighbours_lit(changed: list[SceneObject], scenes: tuple[Scene, ...], changed_set: set[int]) -> list[SceneObject]:
    """Unchanged objects near a changed one that show it: metal ones mirror it; when it is metal, it throws
    strong reflected light on every neighbour."""
    near = {}
    for scene in scenes:
        for obj in scene.objects:
            if obj.id in changed_set:
                continue
            for other in changed:
                gap = math.hypot(obj.x - other.x, obj.y - other.y) - obj.radius - other.radius
                if gap <= REFLECTION_RANGE and "metal" in (obj.material, other.material):
                    near[obj.id] = obj
    return list(near.values())
