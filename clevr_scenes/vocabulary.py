"""CLEVR's object vocabulary: shapes, sizes, materials and its eight colours, with CLEVR's numbers.

Sizes are CLEVR's `r`: the radius of the circle an object's footprint fits in. Spheres and cylinders are
scaled by `r`; a cube is scaled by `r / sqrt(2)` (its half-extent), so its footprint's corners lie on the same
circle whatever its rotation. Every object rests on the ground, its centre at a height equal to its scale.
"""

from __future__ import annotations

import math

import numpy as np

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder")
SIZES: dict[str, float] = {"large": 0.7, "small": 0.35}
MATERIALS: tuple[str, ...] = ("rubber", "metal")
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
COLOR_MODES: tuple[str, ...] = ("clevr", "srgb")
"""How an 8-bit colour becomes a linear render colour: `clevr` feeds rgb/255 straight in as linear values (the
original generator's washed-out look); `srgb` decodes the sRGB transfer curve (darker, more saturated)."""


def shape_scale(shape: str, size: str) -> float:
    """The object's scale factor in Blender units: its half-extent, and the height of its centre.

    CLEVR's unit meshes have half-extent 1 (cube side 2, sphere radius 1, cylinder radius 1 and height 2).
    """
    radius = SIZES[size]
    return radius / math.sqrt(2.0) if shape == "cube" else radius


def srgb_to_linear(rgb255: tuple[int, int, int] | np.ndarray) -> tuple[float, float, float]:
    """The IEC 61966-2-1 sRGB decoding of 8-bit values to linear [0, 1]."""
    c = np.asarray(rgb255, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return tuple(float(v) for v in linear)


def clevr_linear(rgb255: tuple[int, int, int] | np.ndarray) -> tuple[float, float, float]:
    """CLEVR's convention: rgb/255 used directly as linear values."""
    return tuple(float(v) / 255.0 for v in rgb255)


def linear_color(color: str, mode: str = "clevr") -> tuple[float, float, float, float]:
    """The linear RGBA a renderer gives the material of a `color` object, under `mode` (see COLOR_MODES)."""
    if mode not in COLOR_MODES:
        raise ValueError(f"unknown colour mode {mode!r}; choose from {', '.join(COLOR_MODES)}")
    convert = clevr_linear if mode == "clevr" else srgb_to_linear
    return (*convert(COLORS[color]), 1.0)
