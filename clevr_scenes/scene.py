"""A CLEVR scene as data: its objects, lights and camera, the sampling options, and the scene graph JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from clevr_scenes.camera import Camera
from clevr_scenes.relations import RELATION_EPS, relationships
from clevr_scenes.vocabulary import COLORS, MATERIALS, SHAPES, SIZES, shape_scale
from datagen.errors import ConfigError

MIN_OBJECTS, MAX_OBJECTS = 3, 10
"""The object counts CLEVR allows; a scene (civilian or spy) never holds more than MAX_OBJECTS."""
LIGHT_BASE: dict[str, tuple[float, float, float]] = {
    "key": (6.45, -2.90, 4.26),
    "fill": (-4.67, -4.01, 3.01),
    "back": (-1.17, 2.65, 5.82),
}
"""CLEVR's area-light positions before jitter."""
LIGHT_ENERGY_W: dict[str, float] = {"key": 78.5, "fill": 23.6, "back": 39.3}
"""CLEVR's area-light powers (key warm, fill cool, back neutral)."""


JITTERS = ("camera_jitter", "key_light_jitter", "fill_light_jitter", "back_light_jitter")


@dataclass(frozen=True)
class SceneConfig:
    """CLEVR's sampling options; every value is checked when the config is built."""

    min_objects: int = 4
    """Fewest objects in a sampled scene (the paper: 4; CLEVR allows 3..10)."""
    max_objects: int = 6
    """Most objects in a sampled scene (the paper: 6)."""
    min_dist: float = 0.25
    """Smallest gap between two objects' footprint circles."""
    margin: float = 0.4
    """Smallest offset between two objects' centres along each of the left and behind directions."""
    max_retries: int = 50
    """Position draws for one object before the whole scene is placed again."""
    camera_jitter: float = 0.5
    """Each camera coordinate moves by U(-jitter, jitter)."""
    key_light_jitter: float = 1.0
    """Each key-light coordinate moves by U(-jitter, jitter)."""
    fill_light_jitter: float = 1.0
    """Each fill-light coordinate moves by U(-jitter, jitter)."""
    back_light_jitter: float = 1.0
    """Each back-light coordinate moves by U(-jitter, jitter)."""

    def __post_init__(self) -> None:
        for name in ("min_objects", "max_objects"):
            value = getattr(self, name)
            if not isinstance(value, int) or not MIN_OBJECTS <= value <= MAX_OBJECTS:
                raise ConfigError(f"{name} must be an integer from {MIN_OBJECTS} to {MAX_OBJECTS}, got {value!r}")
        if self.min_objects > self.max_objects:
            raise ConfigError(f"min_objects ({self.min_objects}) is larger than max_objects ({self.max_objects})")
        if not isinstance(self.max_retries, int) or self.max_retries < 1:
            raise ConfigError(f"max_retries must be a positive integer, got {self.max_retries!r}")
        for name in ("min_dist", "margin", *JITTERS):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
        if self.min_dist > 1.0 or self.margin > 1.0:
            raise ConfigError(
                f"min_dist ({self.min_dist}) and margin ({self.margin}) must be at most 1.0, "
                "or 10 objects cannot fit on CLEVR's 6 x 6 ground"
            )


@dataclass(frozen=True)
class SceneObject:
    """One object on the ground.

    Attributes:
        id: stable integer >= 1, kept through edits; the renderer uses it as Blender's `pass_index`.
        shape, size, material, color: names from `clevr_scenes.vocabulary`.
        x, y: centre on the ground plane.
        rotation: about the vertical axis, degrees in [0, 360).
    """

    id: int
    shape: str
    size: str
    material: str
    color: str
    x: float
    y: float
    rotation: float

    def __post_init__(self) -> None:
        for name, allowed in (("shape", SHAPES), ("size", SIZES), ("material", MATERIALS), ("color", COLORS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"object {self.id}: unknown {name} {getattr(self, name)!r}; one of {list(allowed)}")
        if self.id < 1:
            raise ValueError(f"object ids start at 1 (0 is the background's pass index), got {self.id}")

    @property
    def scale(self) -> float:
        """Blender scale of CLEVR's unit mesh: the half-extent (a cube's is its size / sqrt(2))."""
        return shape_scale(self.shape, self.size)

    @property
    def z(self) -> float:
        """Height of the centre: objects rest on the ground."""
        return self.scale

    @property
    def radius(self) -> float:
        """Radius of the footprint circle, whatever the rotation; placement keeps these circles apart."""
        return SIZES[self.size]

    @property
    def location(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.z)

    @property
    def attributes(self) -> dict[str, str]:
        """The four named attributes."""
        return {"size": self.size, "color": self.color, "material": self.material, "shape": self.shape}

    def phrase(self) -> str:
        """CLEVR's noun phrase, e.g. "small red rubber cube"."""
        return f"{self.size} {self.color} {self.material} {self.shape}"


@dataclass(frozen=True)
class Lights:
    """World positions of CLEVR's three area lights (each aimed at the origin; powers in LIGHT_ENERGY_W)."""

    key: tuple[float, float, float] = LIGHT_BASE["key"]
    fill: tuple[float, float, float] = LIGHT_BASE["fill"]
    back: tuple[float, float, float] = LIGHT_BASE["back"]

    def to_json(self) -> dict[str, list[float]]:
        """The positions as plain JSON lists."""
        return {"key": list(self.key), "fill": list(self.fill), "back": list(self.back)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lights:
        """The lights `to_json` wrote."""
        return cls(**{name: tuple(float(v) for v in data[name]) for name in ("key", "fill", "back")})


def sample_lights(rng: np.random.Generator, config: SceneConfig) -> Lights:
    """CLEVR's lights, each coordinate moved by U(-jitter, jitter) of its light's jitter."""
    jitters = {"key": config.key_light_jitter, "fill": config.fill_light_jitter, "back": config.back_light_jitter}
    positions = {}
    for name, base in LIGHT_BASE.items():
        offsets = rng.uniform(-jitters[name], jitters[name], size=3) if jitters[name] > 0 else np.zeros(3)
        positions[name] = tuple(float(v) for v in np.add(base, offsets))
    return Lights(**positions)


@dataclass(frozen=True)
class Scene:
    """Objects on the ground seen by one camera under one set of lights; edits make new scenes."""

    objects: tuple[SceneObject, ...]
    camera: Camera = field(default_factory=Camera)
    lights: Lights = field(default_factory=Lights)

    def __post_init__(self) -> None:
        ids = [obj.id for obj in self.objects]
        if len(set(ids)) != len(ids):
            raise ValueError(f"object ids must be unique, got {ids}")

    def object(self, object_id: int) -> SceneObject:
        """The object with `object_id`; KeyError if the scene has none."""
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise KeyError(f"no object {object_id} in the scene (ids: {[o.id for o in self.objects]})")

    def ids(self) -> tuple[int, ...]:
        """Object ids in list order (the order of `to_json`'s objects and relationship indices)."""
        return tuple(obj.id for obj in self.objects)

    def next_id(self) -> int:
        """An id no object of this scene has: one more than the largest."""
        return max(self.ids(), default=0) + 1

    def with_object(self, obj: SceneObject) -> Scene:
        """This scene with `obj` replacing the object of the same id, or appended if the id is new."""
        if obj.id in self.ids():
            return replace(self, objects=tuple(obj if o.id == obj.id else o for o in self.objects))
        return replace(self, objects=(*self.objects, obj))

    def without(self, object_id: int) -> Scene:
        """This scene with the object `object_id` removed."""
        self.object(object_id)
        return replace(self, objects=tuple(o for o in self.objects if o.id != object_id))

    def to_json(self, width: int, height: int) -> dict[str, Any]:
        """CLEVR's scene graph for an image of `width` x `height` pixels, plus ids, camera and lights.

        `objects[i]` has CLEVR's keys (shape, size, material, color, 3d_coords, rotation, pixel_coords) and `id`;
        `relationships[name][i]` lists the indices (into `objects`) of the objects that are `name` of object i.
        """
        directions = self.camera.ground_directions()
        coords = [list(obj.location) for obj in self.objects]
        objects = [
            {
                "id": obj.id,
                "shape": obj.shape,
                "size": obj.size,
                "material": obj.material,
                "color": obj.color,
                "3d_coords": coords[i],
                "rotation": obj.rotation,
                "pixel_coords": self.camera.pixel_coords(obj.location, width, height),
            }
            for i, obj in enumerate(self.objects)
        ]
        return {
            "image_size": [width, height],
            "objects": objects,
            "directions": {name: list(vector) for name, vector in directions.items()},
            "relationships": relationships(coords, directions, RELATION_EPS),
            "camera": self.camera.to_json(),
            "lights": self.lights.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scene:
        """The scene `to_json` wrote (derived fields such as pixel_coords are recomputed, not read)."""
        objects = tuple(
            SceneObject(
                id=int(o["id"]),
                shape=o["shape"],
                size=o["size"],
                material=o["material"],
                color=o["color"],
                x=float(o["3d_coords"][0]),
                y=float(o["3d_coords"][1]),
                rotation=float(o["rotation"]),
            )
            for o in data["objects"]
        )
        return cls(objects=objects, camera=Camera.from_json(data["camera"]), lights=Lights.from_json(data["lights"]))
