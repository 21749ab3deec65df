"""CLEVR's lamps as geometry: their squares, the direct light they send a point, and the share an object blocks.

The renderer builds each lamp as a square area light of side LAMP_SIZE at its scene position, facing the origin
(local -Z to the origin, local +Y up). A point's direct light from a lamp is integrated over LAMP_SAMPLES x
LAMP_SAMPLES points of the square (the lamp's power, times the cosines at both ends, over the squared distance);
an object blocks a sample when the segment to it passes through the object's exact shape (bevels ignored). All
in numpy, from the scene alone: `region.py` uses it to end a shadow where it no longer shows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from clevr_scenes.scene import LIGHT_ENERGY_W, SceneObject

LAMP_SIZE = 1.0
"""Edge of the square area lamps the renderer builds."""
LAMP_SAMPLES = 4
"""Samples per side of a lamp's square when integrating its light."""


def lamp_frame(position: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (forward, right, up) of a lamp at `position` turned to face the origin, as the renderer turns it."""
    forward = -np.asarray(position, np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    return forward, right, np.cross(right, forward)


def lamp_corners(position: Sequence[float]) -> np.ndarray:
    """`[4, 3]` world corners of the lamp at `position`."""
    _, right, up = lamp_frame(position)
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=2)))  # [4, 2]
    return np.asarray(position) + LAMP_SIZE / 2 * (signs[:, :1] * right + signs[:, 1:] * up)


def blocked_share(obj: SceneObject, lamp: str, lights: Mapping[str, Sequence[float]], points: np.ndarray) -> np.ndarray:
    """`[N]` share of the direct light at ground points `points` (`[N, 3]`, z = 0) that `obj` blocks from `lamp`,
    out of the light all of `lights` (name -> position) send there unblocked."""
    total = np.zeros(len(points))
    blocked = np.zeros(len(points))
    for name, position in lights.items():
        samples, light = _ground_light(position, LIGHT_ENERGY_W[name], points)  # [S, 3], [N, S]
        total += light.sum(axis=1)
        if name == lamp:
            blocked += (light * occludes(obj, points, samples)).sum(axis=1)
    return blocked / np.maximum(total, np.finfo(np.float64).tiny)


def _ground_light(position: Sequence[float], power: float, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lamp's sample points `[S, 3]` and the light `[N, S]` each sends to upward-facing `points` (`[N, 3]`)."""
    forward, right, up = lamp_frame(position)
    grid = (np.arange(LAMP_SAMPLES) + 0.5) / LAMP_SAMPLES - 0.5
    a, b = (axis.reshape(-1, 1) for axis in np.meshgrid(grid, grid))
    samples = np.asarray(position) + LAMP_SIZE * (a * right + b * up)  # [S, 3]
    rays = samples[None] - points[:, None]  # [N, S, 3]
    distance_sq = (rays * rays).sum(axis=-1)
    directions = rays / np.sqrt(distance_sq)[..., None]
    at_point = np.clip(directions[..., 2], 0.0, None)
    at_lamp = np.clip(-(directions @ forward), 0.0, None)
    return samples, power / samples.shape[0] * at_point * at_lamp / distance_sq


def occludes(obj: SceneObject, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`[N, S]` whether the segment from `starts[n]` (`[N, 3]`) to `ends[s]` (`[S, 3]`) passes through `obj`."""
    s = obj.scale
    origin = starts[:, None, :] - np.array([obj.x, obj.y, 0.0])  # [N, 1, 3], object-centred, base at z = 0
    step = ends[None, :, :] - starts[:, None, :]  # [N, S, 3]
    if obj.shape == "sphere":
        centred = origin - np.array([0.0, 0.0, s])
        t = np.clip(-(centred * step).sum(-1) / (step * step).sum(-1), 0.0, 1.0)
        nearest = centred + t[..., None] * step
        return (nearest * nearest).sum(-1) < s * s
    if obj.shape == "cube":
        return _through_box(_turned(origin, obj.rotation), _turned(step, obj.rotation), s)
    return _through_cylinder(origin, step, s)


def _turned(vectors: np.ndarray, degrees: float) -> np.ndarray:
    """`vectors` in the frame of an object turned by `degrees` about the vertical axis."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    x, y = vectors[..., 0], vectors[..., 1]
    return np.stack(np.broadcast_arrays(cos * x + sin * y, -sin * x + cos * y, vectors[..., 2]), axis=-1)


def _through_box(origin: np.ndarray, step: np.ndarray, half: float) -> np.ndarray:
    """Slab test of segments against the box [-half, half]^2 x [0, 2 half] (object frame)."""
    low, high = np.array([-half, -half, 0.0]), np.array([half, half, 2.0 * half])
    with np.errstate(divide="ignore", invalid="ignore"):
        near, far = (low - origin) / step, (high - origin) / step
    enter = np.nanmax(np.minimum(near, far), axis=-1)
    leave = np.nanmin(np.maximum(near, far), axis=-1)
    return (enter <= leave) & (leave >= 0.0) & (enter <= 1.0)


def _through_cylinder(origin: np.ndarray, step: np.ndarray, radius: float) -> np.ndarray:
    """Segments against the upright cylinder of `radius` and height 2 radius on the ground (object-centred)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        bottom, top = -origin[..., 2] / step[..., 2], (2.0 * radius - origin[..., 2]) / step[..., 2]
    enter = np.clip(np.nan_to_num(np.minimum(bottom, top), nan=0.0), 0.0, 1.0)
    leave = np.clip(np.nan_to_num(np.maximum(bottom, top), nan=1.0), 0.0, 1.0)
    flat, flat_step = np.broadcast_to(origin[..., :2], step[..., :2].shape), step[..., :2]
    with np.errstate(divide="ignore", invalid="ignore"):
        closest = -(flat * flat_step).sum(-1) / (flat_step * flat_step).sum(-1)
    t = np.clip(np.nan_to_num(closest, nan=0.0), enter, leave)
    nearest = flat + t[..., None] * flat_step
    return (enter < leave) & ((nearest * nearest).sum(-1) < radius * radius)
