"""The camera as data: CLEVR's pose, a projection identical to Blender's, and CLEVR's ground directions.

Conventions (all exact; the renderer checks them against `bpy_extras.object_utils.world_to_camera_view`):
- World: Blender's, right-handed, z up, ground plane z = 0, units = Blender units.
- The camera looks at `target` with its up vector in the vertical plane (a Track To constraint: local -Z to the
  target, local +Y up). `rotation_matrix()` maps camera-local vectors to world vectors; its columns are the
  camera's x (image right), y (image up) and z (backwards, away from the view) axes in world coordinates.
- Perspective lens `lens_mm` over a sensor `sensor_width_mm` wide, sensor fit AUTO: the sensor width spans the
  larger of the image's two sides; pixels are square; no lens shift.
- `project_ndc` returns Blender's `world_to_camera_view`: x, y in [0, 1] across the frame with (0, 0) at the
  bottom-left corner, and depth = distance in front of the camera along its view axis.
- `project` returns pixel coordinates: x to the right and y down, measured from the top-left corner of the
  image in pixels, so (0, 0) is that corner's outer edge and (width, height) the opposite one; the centre of
  pixel (i, j) is (i + 0.5, j + 0.5). CLEVR's `pixel_coords` round these to integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BASE_LOCATION: tuple[float, float, float] = (7.48, -6.51, 5.34)
"""CLEVR's camera position before jitter."""
LENS_MM = 35.0
SENSOR_WIDTH_MM = 32.0
GROUND_DIRECTIONS: tuple[str, ...] = ("left", "right", "front", "behind")


@dataclass(frozen=True)
class Camera:
    """A pinhole camera aimed at `target`, as Blender's camera object would hold it.

    Attributes:
        location: world position of the camera.
        target: world point it looks at (CLEVR: the origin).
        lens_mm: focal length.
        sensor_width_mm: sensor width, mapped to the image's larger side (sensor fit AUTO).
    """

    location: tuple[float, float, float] = BASE_LOCATION
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lens_mm: float = LENS_MM
    sensor_width_mm: float = SENSOR_WIDTH_MM

    def rotation_matrix(self) -> np.ndarray:
        """`[3, 3]` camera-to-world rotation; columns are the camera's x, y, z axes in world coordinates."""
        forward = np.subtract(self.target, self.location).astype(np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        norm = np.linalg.norm(right)
        if norm < 1e-9:
            raise ValueError(f"camera at {self.location} looks straight up or down at {self.target}")
        right /= norm
        up = np.cross(right, forward)
        return np.stack([right, up, -forward], axis=1)

    def matrix_world(self) -> np.ndarray:
        """`[4, 4]` the camera object's world matrix (rotation and location, no scale)."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation_matrix()
        matrix[:3, 3] = self.location
        return matrix

    def rotation_euler(self) -> tuple[float, float, float]:
        """Blender's `rotation_euler` (radians, order XYZ, i.e. R = Rz @ Ry @ Rx) of `rotation_matrix()`."""
        r = self.rotation_matrix()
        return (
            math.atan2(r[2, 1], r[2, 2]),
            math.asin(max(-1.0, min(1.0, -r[2, 0]))),
            math.atan2(r[1, 0], r[0, 0]),
        )

    def project_ndc(self, points_world: np.ndarray, width: int, height: int) -> np.ndarray:
        """`[N, 3]` Blender's `world_to_camera_view` of `[N, 3]` (or `[3]`) world points: (x, y, depth).

        x and y are fractions of the frame from its bottom-left corner; depth is the distance in front of the
        camera along its view axis (negative behind it). A point at depth 0 gives (0.5, 0.5, 0) as in Blender.
        """
        points = np.atleast_2d(np.asarray(points_world, dtype=np.float64))
        local = (points - np.asarray(self.location)) @ self.rotation_matrix()  # [N, 3] camera-local
        depth = -local[:, 2]
        # Half the frame's extent per unit of depth; the sensor width spans the larger image side.
        half_x = half_y = 0.5 * self.sensor_width_mm / self.lens_mm
        if width >= height:
            half_y *= height / width
        else:
            half_x *= width / height
        safe = np.where(depth == 0.0, 1.0, depth)
        x = np.where(depth == 0.0, 0.5, 0.5 + local[:, 0] / safe / (2.0 * half_x))
        y = np.where(depth == 0.0, 0.5, 0.5 + local[:, 1] / safe / (2.0 * half_y))
        return np.stack([x, y, depth], axis=1)

    def project(self, points_world: np.ndarray, width: int, height: int) -> np.ndarray:
        """`[N, 3]` pixel coordinates (x right, y down, from the image's top-left corner) and depth.

        See the module docstring for the exact conventions.
        """
        ndc = self.project_ndc(points_world, width, height)
        return np.stack([ndc[:, 0] * width, (1.0 - ndc[:, 1]) * height, ndc[:, 2]], axis=1)

    def pixel_coords(self, point_world: tuple[float, float, float], width: int, height: int) -> list[float]:
        """CLEVR's `pixel_coords` of one point: [round(x), round(y), depth] (integers as floats stay ints)."""
        x, y, depth = self.project(np.asarray(point_world), width, height)[0]
        return [int(round(x)), int(round(y)), float(depth)]

    def ground_directions(self) -> dict[str, tuple[float, float, float]]:
        """CLEVR's six unit directions: the camera's left and backward view axes flattened onto the ground.

        "behind" points away from the camera, "left" to the image's left; "above"/"below" are the vertical.
        """
        rotation = self.rotation_matrix()
        behind = _flattened(rotation @ np.array([0.0, 0.0, -1.0]))
        left = _flattened(rotation @ np.array([-1.0, 0.0, 0.0]))
        return {
            "behind": behind,
            "front": _negated(behind),
            "left": left,
            "right": _negated(left),
            "above": (0.0, 0.0, 1.0),
            "below": (0.0, 0.0, -1.0),
        }

    def to_json(self) -> dict[str, object]:
        """The camera as plain JSON values."""
        return {
            "location": list(self.location),
            "target": list(self.target),
            "lens_mm": self.lens_mm,
            "sensor_width_mm": self.sensor_width_mm,
            "sensor_fit": "AUTO",
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Camera:
        """The camera `to_json` wrote."""
        return cls(
            location=_triple(data["location"]),
            target=_triple(data["target"]),
            lens_mm=float(data["lens_mm"]),
            sensor_width_mm=float(data["sensor_width_mm"]),
        )


def sample_camera(rng: np.random.Generator, jitter: float) -> Camera:
    """CLEVR's camera with each coordinate of its location moved by U(-jitter, jitter), still aimed at the origin."""
    offsets = rng.uniform(-jitter, jitter, size=3) if jitter > 0 else np.zeros(3)
    return Camera(location=_triple(np.add(BASE_LOCATION, offsets)))


def _flattened(vector: np.ndarray) -> tuple[float, float, float]:
    """`vector` with its vertical part removed, normalised (as CLEVR projects onto the ground plane)."""
    flat = np.array([vector[0], vector[1], 0.0])
    flat /= np.linalg.norm(flat)
    return _triple(flat)


def _negated(vector: tuple[float, float, float]) -> tuple[float, float, float]:
    return (-vector[0], -vector[1], -vector[2])


def _triple(values: object) -> tuple[float, float, float]:
    x, y, z = values  # type: ignore[misc]
    return (float(x), float(y), float(z))
