"""The pair record: the one contract between every generator and every consumer (DESIGN.md).

A domain returns a `Pair` of plain arrays; `encode_pair` turns it into a row of `datagen.features.PAIR_FEATURES`,
whose Image columns hold PNG bytes so that a shard is self-contained on disk and on the Hub. This module
does not import `datasets`, so that worker processes start quickly.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image as PILImage

# zlib level 1 is ~2x faster than the default 6 and only ~25% larger on rendered images. For colour
# images OpenCV's libpng with the run-length strategy is another ~25% faster than Pillow on photos (38 vs
# 52 ms for 1024x683) and ~8% smaller; on charts both take ~6 ms. Pillow stays faster for masks (1.4 vs 4.5 ms).
PNG_COMPRESS_LEVEL = 1
COLOR_PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    PNG_COMPRESS_LEVEL,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
]
CHANGED_OBJECTS = "changed_objects"
"""The `meta` key under which a domain of numbered objects (CLEVR) lists the indices of the objects its edits touched,
in the order they were edited; consumers (`vzero export`) read it instead of parsing the wording of `edits`."""


@dataclass(frozen=True)
class Edit:
    """One machine-readable change, e.g. `Edit("recolor", "series 'Sales'", "#1f77b4", "#d62728")`."""

    op: str
    target: str
    before: str
    after: str


@dataclass
class Pair:
    """What a domain generator returns for one index.

    Attributes:
        civilian: `[H, W, 3]` uint8 RGB, what civilians see.
        spy: `[H, W, 3]` uint8 RGB, what the spy sees.
        diff_mask: `[H, W]` bool, where the images differ by construction.
        diff_boxes: `[x0, y0, x1, y1]` per changed region (exclusive ends), pixels.
        edits: the changes, in the order they were applied.
        description: one true English sentence stating the change.
        difficulty: 0 easy .. 1 hard.
        meta: the domain's ground truth; must be JSON-serialisable.
        civilian_png: `civilian` already encoded by `png_bytes`, or None. A domain whose pairs share
            civilian images (many edits of one photo) encodes each once; encoding is most of their cost.
    """

    civilian: np.ndarray
    spy: np.ndarray
    diff_mask: np.ndarray
    diff_boxes: list[list[int]]
    edits: list[Edit]
    description: str
    difficulty: float
    meta: dict[str, Any] = field(default_factory=dict)
    civilian_png: bytes | None = None


def record_id(domain: str, run_seed: int, index: int) -> str:
    """Stable and unique across runs of one domain: the same (seed, index) is the same pair."""
    return f"{domain}-s{run_seed}-{index:08d}"


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode `[H, W, 3]` uint8 RGB or `[H, W]` bool/uint8 as PNG, deterministically."""
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.ndim == 3:
        encoded, data = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), COLOR_PNG_PARAMS)
        if not encoded:
            raise ValueError(f"OpenCV could not encode a {pixels.shape} {pixels.dtype} image as PNG")
        return data.tobytes()
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def encode_pair(pair: Pair, *, domain: str, run_seed: int, index: int, seed: int) -> dict[str, Any]:
    """The Parquet row of `pair` as declared by `datagen.features.PAIR_FEATURES`."""
    return {
        "id": record_id(domain, run_seed, index),
        "domain": domain,
        "civilian": {"bytes": pair.civilian_png or png_bytes(pair.civilian), "path": None},
        "spy": {"bytes": png_bytes(pair.spy), "path": None},
        "diff_mask": {"bytes": png_bytes(pair.diff_mask), "path": None},
        "diff_boxes": [list(map(int, box)) for box in pair.diff_boxes],
        "edits": [
            {"op": edit.op, "target": edit.target, "before": edit.before, "after": edit.after} for edit in pair.edits
        ],
        "description": pair.description,
        "difficulty": float(pair.difficulty),
        "meta": json.dumps(pair.meta, sort_keys=True, ensure_ascii=False),
        "seed": int(seed),
    }
