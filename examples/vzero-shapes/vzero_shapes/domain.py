"""The shapes domain: a few coloured squares and discs on a plain background; the spy sees one recoloured or removed.

Written only against vision-zero's documented API (`datagen.registry.Domain`, `datagen.record`, `datagen.quality`,
`datagen.seeding`, `datagen.masks`, `datagen.difficulty`, `datagen.checks`), so it is the template for a domain
of one's own: a config dataclass whose fields carry docstrings (they become `vzero domains`' help), a generator
that is a pure function of `(config, index, seed)`, and a `Domain` the entry point names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datagen.checks import check_choices, check_int
from datagen.difficulty import difficulty
from datagen.errors import QualityRejected
from datagen.masks import boxes_from_mask, difference_mask
from datagen.quality import QualityGate
from datagen.record import CHANGED_OBJECTS, Edit, Pair
from datagen.registry import Domain
from datagen.seeding import item_rng

COLORS = {
    "red": (214, 39, 40),
    "blue": (31, 119, 180),
    "green": (44, 160, 44),
    "orange": (255, 127, 14),
    "purple": (148, 103, 189),
    "black": (30, 30, 30),
}
KINDS = ("square", "disc")
EDIT_KINDS = {"recolor": 0.6, "remove": 0.2}
"""Each edit kind with its subtlety, 0 obvious .. 1 subtle (a new colour is subtler than a missing shape)."""
BACKGROUND = (235, 235, 228)
PLACEMENT_DRAWS = 200
"""Random places tried per shape before the layout is given up (the runner then retries another seed)."""
GAP = 3
"""Pixels kept free between shapes, so that changing one never touches another."""
HARD_AREA = 1e-3
QUALITY = QualityGate(tolerance=0, mask_dilation=0, changed_threshold=24, min_changed_pixels=30, max_area_fraction=0.4)


@dataclass(frozen=True)
class ShapesConfig:
    """Options of the shapes domain; `asdict` of it is saved in the run manifest."""

    size: int = 128
    """Width and height of the square images, in pixels (48..1024)."""
    shapes: int = 5
    """Shapes drawn on each civilian image (2..12)."""
    edit_kinds: tuple[str, ...] = tuple(EDIT_KINDS)
    """Edits the change is drawn from: recolor (a shape takes another colour), remove (a shape disappears)."""


@dataclass(frozen=True)
class Shape:
    """One shape: its kind, colour name and bounding box `[x0, y0, x1, y1]` (exclusive ends)."""

    kind: str
    color: str
    box: tuple[int, int, int, int]

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "color": self.color, "box": list(self.box)}

    @property
    def where(self) -> str:
        """'at (x, y)': the shape's centre in pixels, for the description."""
        return f"at ({(self.box[0] + self.box[2]) // 2}, {(self.box[1] + self.box[3]) // 2})"


class ShapesGenerator:
    """Makes shape pairs; cheap to build, so every worker builds its own."""

    skipped_inputs: Sequence = ()
    input_digest = ""

    def __init__(self, config: ShapesConfig) -> None:
        self.config = config

    def __call__(self, index: int, seed: int) -> Pair:
        """The pair of `seed`: lay out shapes, change one, draw both images, measure the difference.

        Raises:
            QualityRejected: the shapes did not fit on the canvas.
        """
        rng = item_rng(seed)
        shapes = self.layout(rng)
        target = int(rng.integers(len(shapes)))
        kind = str(rng.choice(self.config.edit_kinds))
        before = shapes[target]
        if kind == "recolor":
            after = Shape(before.kind, str(rng.choice([c for c in COLORS if c != before.color])), before.box)
            spy_shapes = [*shapes[:target], after, *shapes[target + 1 :]]
            edit = Edit("recolor", f"shape {target}", before.color, after.color)
            sentence = f"The {before.color} {before.kind} {before.where} became {after.color}."
        else:
            spy_shapes = [*shapes[:target], *shapes[target + 1 :]]
            edit = Edit("remove", f"shape {target}", f"{before.color} {before.kind}", "")
            sentence = f"The {before.color} {before.kind} {before.where} was removed."
        civilian, spy = self.draw(shapes), self.draw(spy_shapes)
        mask = difference_mask(civilian, spy)
        return Pair(
            civilian=civilian,
            spy=spy,
            diff_mask=mask,
            diff_boxes=boxes_from_mask(mask),
            edits=[edit],
            description=sentence,
            difficulty=difficulty(mask, [EDIT_KINDS[kind]], hard_area=HARD_AREA),
            meta={"shapes": [shape.to_json() for shape in shapes], "edit": kind, CHANGED_OBJECTS: [target]},
        )

    def layout(self, rng: np.random.Generator) -> list[Shape]:
        """`config.shapes` shapes of random kind, colour and size, `GAP` pixels apart and inside the canvas."""
        size = self.config.size
        placed: list[Shape] = []
        for _ in range(self.config.shapes):
            for _ in range(PLACEMENT_DRAWS):
                side = int(rng.integers(size // 10, size // 5 + 1))
                x0, y0 = (int(value) for value in rng.integers(GAP, size - side - GAP, size=2))
                box = (x0, y0, x0 + side, y0 + side)
                if all(_apart(box, shape.box) for shape in placed):
                    placed.append(Shape(str(rng.choice(KINDS)), str(rng.choice(list(COLORS))), box))
                    break
            else:
                raise QualityRejected(f"no room for shape {len(placed) + 1} of {self.config.shapes}")
        return placed

    def draw(self, shapes: Sequence[Shape]) -> np.ndarray:
        """`[size, size, 3]` uint8: the background with every shape filled in its colour."""
        size = self.config.size
        image = np.empty((size, size, 3), np.uint8)
        image[:] = BACKGROUND
        for shape in shapes:
            x0, y0, x1, y1 = shape.box
            if shape.kind == "square":
                image[y0:y1, x0:x1] = COLORS[shape.color]
            else:
                ys, xs = np.mgrid[y0:y1, x0:x1]
                radius = (x1 - x0) / 2
                inside = (xs + 0.5 - (x0 + radius)) ** 2 + (ys + 0.5 - (y0 + radius)) ** 2 <= radius**2
                image[y0:y1, x0:x1][inside] = COLORS[shape.color]
        return image


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[2] + GAP <= b[0] or b[2] + GAP <= a[0] or a[3] + GAP <= b[1] or b[3] + GAP <= a[1]


def make_generator(config: ShapesConfig) -> ShapesGenerator:
    """Validate `config` before any work and build the generator.

    Raises:
        ConfigError: a value out of range or an unknown edit kind.
    """
    check_int("size", config.size, 48, 1024, unit="pixels")
    check_int("shapes", config.shapes, 2, 12)
    check_choices("edit_kinds", config.edit_kinds, EDIT_KINDS, what="edit kind")
    return ShapesGenerator(config)


DOMAIN = Domain(
    name="shapes",
    config_type=ShapesConfig,
    make_generator=make_generator,
    quality=QUALITY,
    summary="coloured squares and discs on a plain background; one recoloured or removed (an example package)",
    prompt_hint="one of the coloured shapes differs: it may have another colour or be missing",
)
