"""CLEVR's placement rules: sampling a scene that obeys them, and listing where a scene breaks them.

The rules, for every pair of objects: their footprint circles are at least `min_dist` apart, and their centres
are at least `margin` apart along each of the camera's ground directions (left/right and front/behind), so
that every left/right/front/behind relationship is unambiguous. Centres lie in [-3, 3] x [-3, 3].

CLEVR checks a cube by its half-extent once placed but by its full size while being placed; here every object
is checked by its footprint circle (radius = size), which is the stricter of the two and holds for any rotation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from clevr_scenes.camera import sample_camera
from clevr_scenes.scene import Scene, SceneConfig, SceneObject, sample_lights
from clevr_scenes.vocabulary import COLORS, MATERIALS, SHAPES, SIZES
from datagen.errors import QualityRejected

GROUND_HALF_EXTENT = 3.0
"""Centres are drawn from U(-3, 3) on both ground axes, as in CLEVR."""
MAX_RESTARTS = 200
"""Whole-scene placements tried before giving up; CLEVR retries forever, which a pure function must not."""
_TOLERANCE = 1e-9
"""Slack for floating-point round-off when re-checking positions that were accepted exactly."""


def sample_scene(rng: np.random.Generator, config: SceneConfig) -> Scene:
    """A CLEVR scene: object count, camera and lights jittered, then objects placed one by one.

    Each object draws its size, then up to `config.max_retries` positions until one obeys the rules against
    the objects already placed; if none does, every object is placed again (CLEVR's restart). Then it draws
    its shape, colour, rotation and material. Object ids are 1..N in placement order.

    Raises:
        QualityRejected: no valid placement after MAX_RESTARTS restarts (only with crowded custom configs).
    """
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    camera = sample_camera(rng, config.camera_jitter)
    lights = sample_lights(rng, config)
    directions = camera.ground_directions()
    for _ in range(MAX_RESTARTS):
        objects = _place_all(rng, count, config, directions)
        if objects is not None:
            return Scene(objects=tuple(objects), camera=camera, lights=lights)
    raise QualityRejected(f"could not place {count} objects by CLEVR's rules in {MAX_RESTARTS} attempts")


def _place_all(
    rng: np.random.Generator, count: int, config: SceneConfig, directions: Mapping[str, Sequence[float]]
) -> list[SceneObject] | None:
    """`count` objects placed in turn, or None when one of them found no position (start over)."""
    objects: list[SceneObject] = []
    for object_id in range(1, count + 1):
        obj = random_object(rng, object_id, objects, config, directions)
        if obj is None:
            return None
        objects.append(obj)
    return objects


def random_object(
    rng: np.random.Generator,
    object_id: int,
    others: Sequence[SceneObject],
    config: SceneConfig,
    directions: Mapping[str, Sequence[float]],
    *,
    tries: int | None = None,
) -> SceneObject | None:
    """An object of random size, shape, colour, material and rotation placed by the rules, or None.

    Scene sampling and the `add` edit both make objects this way, so an added object is any object
    the scene itself could have held.
    """
    size = str(rng.choice(tuple(SIZES)))
    position = draw_position(rng, SIZES[size], others, config, directions, tries=tries)
    if position is None:
        return None
    return SceneObject(
        id=object_id,
        shape=str(rng.choice(SHAPES)),
        size=size,
        color=str(rng.choice(tuple(COLORS))),
        rotation=float(360.0 * rng.random()),
        material=str(rng.choice(MATERIALS)),
        x=position[0],
        y=position[1],
    )


def draw_position(
    rng: np.random.Generator,
    radius: float,
    others: Sequence[SceneObject],
    config: SceneConfig,
    directions: Mapping[str, Sequence[float]],
    *,
    away_from: tuple[float, float] | None = None,
    min_travel: float = 0.0,
    tries: int | None = None,
) -> tuple[float, float] | None:
    """A uniform position for a footprint of `radius` that obeys the rules against `others`, or None.

    Tries `tries` draws, by default `config.max_retries` as CLEVR does for one object. With `away_from`, a
    position is also rejected when it lies less than `min_travel` from that point (a move that shows).
    """
    for _ in range(config.max_retries if tries is None else tries):
        x, y = (float(v) for v in rng.uniform(-GROUND_HALF_EXTENT, GROUND_HALF_EXTENT, size=2))
        if away_from is not None and math.hypot(x - away_from[0], y - away_from[1]) < min_travel:
            continue
        if all(_pair_problem(x, y, radius, other, config, directions) is None for other in others):
            return x, y
    return None


def placement_violations(scene: Scene, config: SceneConfig) -> list[str]:
    """Every way `scene` breaks the placement rules, one line each; empty means the scene is valid."""
    directions = scene.camera.ground_directions()
    problems = []
    for i, obj in enumerate(scene.objects):
        if max(abs(obj.x), abs(obj.y)) > GROUND_HALF_EXTENT + _TOLERANCE:
            problems.append(f"object {obj.id}: centre ({obj.x:.3f}, {obj.y:.3f}) is outside [-3, 3] x [-3, 3]")
        for other in scene.objects[i + 1 :]:
            problem = _pair_problem(obj.x, obj.y, obj.radius, other, config, directions, _TOLERANCE)
            if problem is not None:
                problems.append(f"objects {obj.id} and {other.id}: {problem}")
    return problems


def _pair_problem(
    x: float,
    y: float,
    radius: float,
    other: SceneObject,
    config: SceneConfig,
    directions: Mapping[str, Sequence[float]],
    tolerance: float = 0.0,
) -> str | None:
    """Why a footprint of `radius` at (x, y) may not stand beside `other`, or None if it may."""
    dx, dy = x - other.x, y - other.y
    gap = math.hypot(dx, dy) - radius - other.radius
    if gap < config.min_dist - tolerance:
        return f"footprints {gap:.3f} apart, less than min_dist {config.min_dist}"
    for name in ("left", "behind"):
        direction = directions[name]
        offset = abs(dx * direction[0] + dy * direction[1])
        if offset < config.margin - tolerance:
            return f"centres {offset:.3f} apart along {name}, less than margin {config.margin}"
    return None
