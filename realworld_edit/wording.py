"""The English of a real-photo pair: 3×3 position words, colour names and the one-sentence description."""

from __future__ import annotations

import re
from collections.abc import Sequence

import cv2
import numpy as np

POSITIONS = (
    ("upper left", "top", "upper right"),
    ("left", "centre", "right"),
    ("lower left", "bottom", "lower right"),
)
"""Names of the cells of a 3×3 grid over the image, by row then column."""

PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "dark grey": (75, 75, 75),
    "grey": (128, 128, 128),
    "light grey": (190, 190, 190),
    "white": (245, 245, 245),
    "red": (200, 30, 35),
    "dark red": (115, 20, 25),
    "orange": (240, 135, 30),
    "yellow": (235, 215, 45),
    "olive": (120, 120, 30),
    "brown": (115, 70, 35),
    "tan": (205, 170, 125),
    "green": (45, 160, 60),
    "dark green": (25, 80, 35),
    "teal": (20, 130, 130),
    "cyan": (80, 200, 225),
    "blue": (35, 75, 200),
    "navy": (25, 30, 95),
    "purple": (115, 50, 160),
    "pink": (240, 135, 175),
    "magenta": (200, 40, 165),
}
"""Colour names and the sRGB colour each stands for; a colour is named after its nearest entry in CIELAB."""

RECOLOR_TARGETS = ("red", "orange", "yellow", "green", "teal", "cyan", "blue", "purple", "pink", "magenta")
"""Chromatic names a recolouring aims for (the name in the description is measured on the result)."""


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """`[..., 3]` uint8 sRGB -> `[..., 3]` float32 CIELAB (L 0..100, a and b about -128..127)."""
    pixels = np.asarray(rgb, dtype=np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2LAB).reshape(np.shape(rgb))


_PALETTE_NAMES = tuple(PALETTE)
_PALETTE_LAB = to_lab(np.array([PALETTE[name] for name in _PALETTE_NAMES], np.uint8))


def colour_name(rgb: Sequence[float] | np.ndarray) -> str:
    """The palette name nearest to one sRGB colour (CIE76 distance in CIELAB)."""
    lab = to_lab(np.clip(np.round(np.asarray(rgb, np.float32)), 0, 255).astype(np.uint8).reshape(1, 3))[0]
    return _PALETTE_NAMES[int(np.argmin(((_PALETTE_LAB - lab) ** 2).sum(axis=1)))]


def palette_lab(name: str) -> np.ndarray:
    """`[3]` float32 CIELAB of a palette colour."""
    return _PALETTE_LAB[_PALETTE_NAMES.index(name)]


def typical_colour(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`[3]` per-channel median of `pixels` `[H, W, 3]` where `mask` `[H, W]` is set: robust to highlights."""
    return np.median(pixels[mask], axis=0)


def position_name(box: Sequence[int], width: int, height: int) -> str:
    """The 3×3 cell holding the centre of `box` `[x0, y0, x1, y1]` in a `width`×`height` image."""
    column = min(2, int(3 * (box[0] + box[2]) / 2 / width))
    row = min(2, int(3 * (box[1] + box[3]) / 2 / height))
    return POSITIONS[row][column]


def at(position: str) -> str:
    """'centre' -> 'at the centre'."""
    return f"at the {position}"


def describe(clauses: Sequence[str]) -> str:
    """Join per-edit clauses into one sentence: 'The red region at the top became blue; the ... was removed.'"""
    sentence = "; ".join(clauses)
    return sentence[:1].upper() + sentence[1:] + "."


INSTRUCTION_KINDS = (
    ("remove", re.compile(r"^(remove|delete|erase|take (away|out)|get rid of|eliminate)\b")),
    ("add", re.compile(r"^(add|put|place|insert|include|draw)\b")),
    ("replace", re.compile(r"^(replace|swap|substitute|exchange)\b")),
    ("recolor", re.compile(r"^(change|turn|make|paint|color|colour)\b.*\b(colou?r|red|orange|yellow|green|blue|purple"
                           r"|pink|black|white|gr[ae]y|brown)\b")),
)  # fmt: skip
"""Edit kinds recognised from an instruction's first words; anything else is `instructed`."""


def instruction_sentence(instruction: str) -> str:
    """An edit instruction as one sentence: whitespace collapsed, first letter capitalised, closing punctuation."""
    text = " ".join(instruction.split())
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def instruction_kind(instruction: str) -> str:
    """`remove`, `add`, `replace` or `recolor` when the instruction starts like one, else `instructed`."""
    text = " ".join(instruction.lower().split()).removeprefix("please ")
    for kind, pattern in INSTRUCTION_KINDS:
        if pattern.search(text):
            return kind
    return "instructed"
