"""Where in the image an edit can show: the changed objects, their shadows and their reflections.

Computed from the scene graphs alone (no render), as the screen projection of 3D point sets, "parts". A changed
object owns its hull before and after the edit with the ground around it (contact shadow, colour bleeding) and,
when its geometry changed (shape, size, place, presence), that hull with its shadow cast from the four corners of
each lamp. An unchanged object on which it can show owns its own hull: every metal object (a mirror), and, when
the changed object is metal, the objects near it that it lights. A part's pixels are the convex polygon of its
projected points, grown by a small margin. Two views of the same parts:

- footprints: per owner, the union of its parts' polygons. The diff mask lies inside them.
- regions: the rectangles the spy is rendered in, each part's bounding rectangle, merged where one render of
  the union costs less than two (a render costs its area plus a fixed overhead).

A shadow is cut where it no longer takes a visible share of the light (`lamps.py`): the geometric penumbra of a
low lamp reaches far beyond where its shadow shows.

`tests/test_clevr_render.py` and `bench/bench_clevr.py` check them against full renders of the spy.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from clevr_scenes.camera import Camera
from clevr_scenes.lamps import blocked_share, lamp_corners
from clevr_scenes.scene import Scene, SceneObject

BLEED = 0.5
"""Ground around an object (Blender units) that its contact shadow and reflected colour reach."""
REFLECTION_RANGE = 3.0
"""Objects whose footprint comes this close to a changed metal object's catch the light it reflects."""
GEOMETRY = ("shape", "size", "x", "y", "rotation")
"""Attributes whose change moves a shadow; colour and material leave it in place."""
MARGIN_FRACTION = 0.01
"""Pixels a part's polygon is grown by, as a fraction of the larger image side (at least MIN_MARGIN): the pixel
filter spreads an edge over a pixel or so; the polygons already hold whole penumbrae."""
MIN_MARGIN = 2
"""Fewest pixels a part's polygon is grown by, at small image sizes."""
NEAR_DEPTH = 1.0
"""Depth in front of the camera from which parts are kept (the ground the frame shows is ~8 units away); a shadow
cast towards the camera is cut there instead of reaching behind it."""
MAX_SCREEN_EXTENT = 1024
"""A part reaching further than this many frame sizes off screen cannot be drawn in fixed point: it is the frame."""
HULL_SEGMENTS = 16
"""Points per ring of a round object's hull."""
RENDER_OVERHEAD = 0.025
"""The fixed cost of one render, as a fraction of the frame's pixels (decides when two regions merge): 16 ms
against 0.7 s for a whole 320x240 frame, measured."""
SUBPIXEL_BITS = 2
"""Fractional bits of the polygon vertices handed to OpenCV."""
_ANGLES = np.linspace(0.0, 2.0 * math.pi, HULL_SEGMENTS, endpoint=False)
_UNIT_RING = np.column_stack([np.cos(_ANGLES), np.sin(_ANGLES)]) / math.cos(math.pi / HULL_SEGMENTS)
"""`[HULL_SEGMENTS, 2]` a polygon circumscribing the unit circle."""
MIN_SHADOW_CLEARANCE = 0.05
"""A lamp less than this above an object's top would cast an unbounded shadow: the region is the frame."""
MIN_SHADOW_SHARE = 0.03
"""A shadow ends where it takes less than this share of a ground point's direct light (`lamps.blocked_share`).
Light scaled by 1 - r moves an sRGB level l by about l r / 2.4, at most 3 levels here; the indirect and sky light
the share leaves out make it less. Long shadows of low lamps fade out well before their geometric tip."""
AXIS_STEP = 0.1
"""Spacing (scene units) of the points along a shadow's axis where its strength is measured."""
MAX_AXIS_POINTS = 400


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

    def to_json(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


def changed_ids(civilian: Scene, spy: Scene) -> tuple[int, ...]:
    """Ids of objects added, removed or changed in any way between the two scenes, ascending."""
    before = {obj.id: obj for obj in civilian.objects}
    after = {obj.id: obj for obj in spy.objects}
    return tuple(sorted(i for i in before.keys() | after.keys() if before.get(i) != after.get(i)))


@dataclass(frozen=True, order=True)
class Owner:
    """What a part's pixels belong to: a changed object (its look before and after, its contact and shadows), or
    an unchanged object on which changes show (the changed objects mirrored in it, or the light they throw on it).

    Attributes:
        mirror: False for a changed object, True for an unchanged one showing changes.
        object_id: that object's id.
    """

    mirror: bool
    object_id: int

    def describe(self) -> str:
        """What a box of this owner holds, in words (for the record's `meta`)."""
        if self.mirror:
            return f"object {self.object_id}, where it mirrors or is lit by a changed object"
        return f"object {self.object_id} before and after the edit, with its shadows"


@dataclass(frozen=True)
class Part:
    """3D points whose projection's convex polygon holds pixels one changed object can alter.

    Attributes:
        owner: whose change the pixels show.
        points: `[N, 3]` world points, or None when the part is unbounded (then it is the whole frame).
    """

    owner: Owner
    points: np.ndarray | None


@dataclass(frozen=True)
class ChangeArea:
    """Where the edits of a pair can show on a `width` x `height` image.

    Attributes:
        footprints: per owner (changed objects by id, then mirrors by id), the `[height, width]` bool union of
            its parts' polygons.
        regions: the rectangles to render the spy in: each part's bounding rectangle, rectangles inside another
            dropped, two replaced by their bounding rectangle when it costs no more than both (a render costs
            its area plus RENDER_OVERHEAD). The rest may overlap: each is a render of the whole spy scene and so
            holds every change on its pixels. Empty when the edits change nothing.
    """

    footprints: dict[Owner, np.ndarray]
    regions: list[Region]


def change_area(civilian: Scene, spy: Scene, width: int, height: int) -> ChangeArea:
    """The pixels the edits from `civilian` to `spy` can change (see the module docstring).

    Raises:
        ValueError: the two scenes are seen by different cameras or lit by different lamps (then every
            pixel changes and there is no local region).
    """
    masks = _part_masks(civilian, spy, width, height)
    boxes = [_box(mask) for owner_masks in masks.values() for mask in owner_masks]
    return ChangeArea(
        footprints={owner: np.logical_or.reduce(masks[owner]) for owner in sorted(masks)},
        regions=_merged([box for box in boxes if box is not None], overhead=RENDER_OVERHEAD * width * height),
    )


def parts(civilian: Scene, spy: Scene) -> list[Part]:
    """Every part of the edits from `civilian` to `spy` (see the module docstring), in object id order.

    Raises:
        ValueError: as `change_area`.
    """
    if civilian.camera != spy.camera or civilian.lights != spy.lights:
        raise ValueError("a change area needs the same camera and lamps in both scenes")
    ids = changed_ids(civilian, spy)
    reshaped = set(_reshaped(civilian, spy, ids))
    lights = civilian.lights.to_json()
    found: list[Part] = []
    for object_id in ids:
        states = [scene.object(object_id) for scene in (civilian, spy) if object_id in scene.ids()]
        own = Owner(mirror=False, object_id=object_id)
        found += [Part(own, np.concatenate([hull(obj), _ground_ring(obj)])) for obj in states]
        if object_id in reshaped:
            for obj, lamp in itertools.product(states, lights):
                shadow = _shadow_points(obj, lamp, lights)
                found.append(Part(own, None if shadow is None else np.concatenate([hull(obj), shadow])))
        lit = _neighbours_lit(states, (civilian, spy), set(ids))
        found += [Part(Owner(mirror=True, object_id=obj.id), hull(obj)) for obj in lit]
    return found


def _part_masks(civilian: Scene, spy: Scene, width: int, height: int) -> dict[Owner, list[np.ndarray]]:
    """Per owner, one `[height, width]` bool mask per part: its polygon grown by the margin."""
    margin = max(MIN_MARGIN, round(MARGIN_FRACTION * max(width, height)))
    grow = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    found = parts(civilian, spy)
    polygons = _polygons(civilian.camera, [part.points for part in found], width, height)
    masks: dict[Owner, list[np.ndarray]] = {}
    for part, polygon in zip(found, polygons):
        if polygon is None:
            mask = np.ones((height, width), bool)
        else:
            canvas = np.zeros((height, width), np.uint8)
            cv2.fillConvexPoly(canvas, polygon, 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
            mask = cv2.dilate(canvas, grow).astype(bool)
        masks.setdefault(part.owner, []).append(mask)
    return masks


def _polygons(camera: Camera, point_sets: list[np.ndarray | None], width: int, height: int) -> list[np.ndarray | None]:
    """Per point set (`[N, 3]` world, or None for an unbounded part), the convex polygon of its part at least
    NEAR_DEPTH in front of the camera, on screen in fixed point with SUBPIXEL_BITS; None for a part that is the
    whole frame (unbounded, or reaching too far off screen to draw). Projected in one batch (the camera's
    rotation is recomputed per call)."""
    bounded = [points for points in point_sets if points is not None]
    if not bounded:
        return [None] * len(point_sets)
    depths = np.split(camera.project_ndc(np.concatenate(bounded), width, height)[:, 2], _ends(bounded))
    clipped = [_clipped(points, -depth, -NEAR_DEPTH) for points, depth in zip(bounded, depths)]
    projected = iter(np.split(camera.project(np.concatenate(clipped), width, height)[:, :2], _ends(clipped)))
    reach = MAX_SCREEN_EXTENT * max(width, height)
    polygons: list[np.ndarray | None] = []
    for points in point_sets:
        screen = None if points is None else next(projected)
        if screen is None or (np.abs(screen) > reach).any():
            polygons.append(None)
            continue
        fixed = fixed_point(screen)
        polygons.append(cv2.convexHull(fixed) if len(fixed) else fixed.reshape(0, 1, 2))
    return polygons


def fixed_point(screen: np.ndarray) -> np.ndarray:
    """`[N, 2]` pixel coordinates (`Camera.project`'s) as OpenCV drawing coordinates with SUBPIXEL_BITS.

    Pixel (i, j) spans [i, i + 1) x [j, j + 1); OpenCV puts pixel centres at integers, hence the half-pixel shift.
    """
    return np.round((screen - 0.5) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _ends(arrays: list[np.ndarray]) -> np.ndarray:
    """Split points that cut a concatenation of `arrays` back into them."""
    return np.cumsum([len(array) for array in arrays])[:-1]


def _clipped(points: np.ndarray, values: np.ndarray, limit: float) -> np.ndarray:
    """Points whose convex hull is the part of `points`' convex hull where the linear function `values` (one per
    point) is at most `limit`: the points there, and where each segment from one of them to a point beyond crosses
    the limit."""
    kept = values <= limit
    if kept.all():
        return points
    start, end = points[kept][:, None], points[~kept][None, :]  # [A, 1, 3], [1, B, 3]
    t = (limit - values[kept][:, None]) / (values[~kept][None, :] - values[kept][:, None])  # [A, B]
    crossings = start + t[..., None] * (end - start)
    return np.concatenate([points[kept], crossings.reshape(-1, 3)])


def _box(mask: np.ndarray) -> Region | None:
    """The bounding rectangle of `mask`'s pixels, or None when it has none."""
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        return None
    return Region(int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1)


def _merged(regions: list[Region], overhead: float) -> list[Region]:
    """`regions` with every pair whose bounding rectangle costs no more than the two replaced by it.

    A render costs its area plus `overhead` (in pixels: scene sync, file output).
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


def hull(obj: SceneObject) -> np.ndarray:
    """`[N, 3]` points whose convex hull holds `obj`: what it covers on screen and what casts its shadow.

    A cube's 8 corners as rotated; for round shapes, rings of HULL_SEGMENTS points pushed out so that the
    polygon through them circumscribes the circle.
    """
    s = obj.scale
    if obj.shape == "cube":
        angle = math.radians(obj.rotation)
        turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        corners = s * np.array([(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)]) @ turn.T + (obj.x, obj.y)
        return np.concatenate([np.column_stack([corners, np.full(4, z)]) for z in (0.0, 2.0 * s)])
    if obj.shape == "cylinder":
        levels = np.array([(0.0, s), (2.0 * s, s)])
    else:
        # The octagon circumscribing the sphere's vertical section, revolved: rings at tan(22.5 deg) = 0.414.
        t = math.tan(math.pi / 8)
        levels = np.array([(0.0, t * s), (s - t * s, s), (s + t * s, s), (2.0 * s, t * s)])
    rings = levels[:, None, 1:] * _UNIT_RING[None] + (obj.x, obj.y)  # [levels, HULL_SEGMENTS, 2]
    heights = np.broadcast_to(levels[:, None, :1], (len(levels), HULL_SEGMENTS, 1))
    return np.concatenate([rings, heights], axis=-1).reshape(-1, 3)


def _ground_ring(obj: SceneObject) -> np.ndarray:
    """`[4, 3]` ground corners of the square `BLEED` beyond `obj`'s footprint (contact shadow, bled colour)."""
    reach = obj.radius + BLEED
    return np.array([(obj.x + dx * reach, obj.y + dy * reach, 0.0) for dx in (-1, 1) for dy in (-1, 1)])


def _shadow_points(obj: SceneObject, lamp: str, lights: dict[str, list[float]]) -> np.ndarray | None:
    """`[K, 3]` ground points whose convex hull holds the shadow `obj`'s hull casts from the four corners of `lamp`
    (a name in `lights`), as far as it takes MIN_SHADOW_SHARE of the light; None if the shadow is unbounded."""
    points = hull(obj)
    raised = points[points[:, 2] > 0]
    corners = lamp_corners(lights[lamp])
    if corners[:, 2].min() - raised[:, 2].max() < MIN_SHADOW_CLEARANCE:
        return None
    # The ray from a corner through a hull point meets the ground at t = corner_z / (corner_z - z).
    t = corners[:, None, 2:] / (corners[:, None, 2:] - raised[None, :, 2:])  # [4, R, 1]
    ground = (corners[:, None] + t * (raised[None] - corners[:, None])).reshape(-1, 3)
    ground[:, 2] = 0.0
    return _shortened(ground, obj, lamp, lights)


def _shortened(ground: np.ndarray, obj: SceneObject, lamp: str, lights: dict[str, list[float]]) -> np.ndarray:
    """`ground` (a shadow's points) cut across the shadow's axis past the last point of the axis where the shadow
    takes MIN_SHADOW_SHARE of the light. The axis runs from below the lamp through the object's centre, where a
    convex object's shadow is deepest."""
    centre = np.array([obj.x, obj.y])
    axis = centre - np.asarray(lights[lamp][:2])
    axis /= np.linalg.norm(axis)
    along = (ground[:, :2] - centre) @ axis
    step = max(AXIS_STEP, along.max() / MAX_AXIS_POINTS)
    distances = np.arange(0.0, along.max() + step, step)
    probes = np.column_stack([centre + distances[:, None] * axis, np.zeros(len(distances))])
    deep = np.nonzero(blocked_share(obj, lamp, lights, probes) >= MIN_SHADOW_SHARE)[0]
    cut = _clipped(ground, along, distances[deep[-1]] + step if deep.size else 0.0)
    # Only the outline matters, and every point kept multiplies the work of the next cut (at the camera).
    return cut[cv2.convexHull(cut[:, :2].astype(np.float32), returnPoints=False).ravel()] if len(cut) > 2 else cut


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
    """Unchanged objects that show a changed one: metal ones mirror it from anywhere in the scene (a 60-level
    reflection in a sphere 4 units away was measured); when it is metal, it throws strong reflected light on the
    objects near it."""
    near = {}
    for scene in scenes:
        for obj in scene.objects:
            if obj.id in changed_set:
                continue
            for other in changed:
                gap = math.hypot(obj.x - other.x, obj.y - other.y) - obj.radius - other.radius
                if obj.material == "metal" or (other.material == "metal" and gap <= REFLECTION_RANGE):
                    near[obj.id] = obj
    return list(near.values())
