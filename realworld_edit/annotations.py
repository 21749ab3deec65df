"""COCO-style instance annotations (`instances.json`): checked when the source opens, rasterised per image on load.

Only the cheap part happens at open time (parse the JSON, match images by `file_name`, check every
polygon and RLE against its image's size), so each bad annotation is reported once per run and dropped;
masks are drawn only for the image being loaded, directly at its resized size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from datagen.errors import InputError
from datagen.files import sha256_file
from realworld_edit.entry import SourceEntry

EDGE_TOLERANCE = 1.0
"""Polygon vertices may lie this many pixels outside the image (COCO tools round outward); further is an error."""
_POLYGON_SHIFT = 4
"""Sub-pixel bits for `cv2.fillPoly`, so polygons scaled to the resized image keep their fractional corners."""


@dataclass(frozen=True)
class Annotation:
    """One checked object annotation, in the coordinates of its image's full size.

    Attributes:
        annotation_id: the file's `id` for it.
        category: its category's name.
        polygons: `[N, 2]` float arrays of x, y vertices (empty for an RLE annotation).
        rle_counts: run lengths, column-major as COCO stores them, starting with background (None for polygons).
        size: (height, width) of the image the annotation was drawn on.
    """

    annotation_id: int
    category: str
    polygons: tuple[np.ndarray, ...]
    rle_counts: tuple[int, ...] | None
    size: tuple[int, int]


@dataclass
class AnnotationIndex:
    """Checked annotations keyed by source image id, plus the annotation file's checksum for the run digest."""

    sha256: str
    by_image: dict[str, list[Annotation]] = field(default_factory=dict)

    def masks(
        self, image_id: str, full_size: tuple[int, int], out_size: tuple[int, int]
    ) -> list[tuple[int, str, np.ndarray]]:
        """(annotation id, category, `[H, W]` bool mask at `out_size`) per object of `image_id`, largest first.

        Args:
            image_id: the source's id of the image.
            full_size: (height, width) of the decoded image before resizing; the annotations' coordinates.
            out_size: (height, width) of the pixels the masks must match.
        """
        masks = []
        for annotation in self.by_image.get(image_id, []):
            mask = rasterise(annotation, full_size, out_size)
            if mask.any():
                masks.append((annotation.annotation_id, annotation.category, mask))
        masks.sort(key=lambda item: (-int(item[2].sum()), item[0]))
        return masks


def load_annotations(path: Path, entries: Sequence[SourceEntry]) -> tuple[AnnotationIndex | None, list[InputError]]:
    """Parse and check a COCO instances file against the source's images.

    Images are matched by `file_name`: to an entry's relative path first, else to its bare file name when
    exactly one entry has that name. Images of the file absent from the source are ignored (a COCO file
    usually covers more images than a user's folder); crowd annotations are ignored (they are not single
    objects).

    Returns:
        The index (None when the file as a whole is unusable) and one error per unusable file, image
        record or annotation.
    """
    source = path.name  # errors reach the published report: never the file's absolute path
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        return None, [InputError(source, f"cannot read annotation file: {error.strerror or error}")]
    except UnicodeDecodeError as error:
        return None, [InputError(source, f"annotation file is not UTF-8 text: {error.reason} at byte {error.start}")]
    except json.JSONDecodeError as error:
        message = f"annotation file is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        return None, [InputError(source, message)]
    problem = _shape_problem(document)
    if problem is not None:
        return None, [InputError(source, problem)]
    categories = {
        category.get("id"): str(category.get("name", category.get("id"))) for category in document["categories"]
    }
    images, problems = _match_images(document["images"], entries, source)
    index = AnnotationIndex(sha256=sha256_file(path))
    for record in document["annotations"]:
        if not isinstance(record, dict) or record.get("image_id") not in images or record.get("iscrowd", 0):
            continue
        image_id, size = images[record["image_id"]]
        try:
            annotation = parse_annotation(record, categories, size)
        except InputError as error:
            problems.append(InputError(f"{source} annotation {record.get('id')} ({image_id})", error.reason))
            continue
        index.by_image.setdefault(image_id, []).append(annotation)
    return index, problems


def parse_annotation(record: dict[str, Any], categories: dict[Any, str], size: tuple[int, int]) -> Annotation:
    """One annotation checked against its image's (height, width).

    Raises:
        InputError: unknown category, malformed segmentation, a polygon outside the image, or an RLE whose
            size or total length does not match the image (`source` is left to the caller).
    """
    height, width = size
    if record.get("category_id") not in categories:
        raise InputError("", f"unknown category_id {record.get('category_id')!r}")
    segmentation = record.get("segmentation")
    polygons: tuple[np.ndarray, ...] = ()
    counts: tuple[int, ...] | None = None
    if isinstance(segmentation, list):
        polygons = tuple(_polygon(points, width, height) for points in segmentation)
        if not polygons:
            raise InputError("", "segmentation holds no polygon")
    elif isinstance(segmentation, dict):
        counts = _rle_counts(segmentation, height, width)
    else:
        raise InputError(
            "", f"segmentation must be a list of polygons or an RLE object, not {type(segmentation).__name__}"
        )
    return Annotation(
        annotation_id=int(record.get("id", -1)),
        category=categories[record["category_id"]],
        polygons=polygons,
        rle_counts=counts,
        size=size,
    )


def rasterise(annotation: Annotation, full_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """The `[H, W]` bool mask at `out_size`: polygons are drawn there directly, RLE is decoded then resized."""
    out_height, out_width = out_size
    if annotation.rle_counts is not None:
        mask = decode_rle(annotation.rle_counts, annotation.size)
        if mask.shape != out_size:
            mask = cv2.resize(mask.astype(np.uint8), (out_width, out_height), interpolation=cv2.INTER_NEAREST) > 0
        return mask
    scale_x = out_width / full_size[1]
    scale_y = out_height / full_size[0]
    canvas = np.zeros(out_size, np.uint8)
    scaled = [
        np.rint(polygon * [scale_x, scale_y] * (1 << _POLYGON_SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        for polygon in annotation.polygons
    ]
    cv2.fillPoly(canvas, scaled, 1, lineType=cv2.LINE_8, shift=_POLYGON_SHIFT)
    return canvas > 0


def decode_rle(counts: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """`[H, W]` bool mask from uncompressed run lengths (column-major, background first), as COCO defines them."""
    height, width = size
    values = np.zeros(len(counts), np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, np.asarray(counts, dtype=np.int64))
    return flat.reshape(width, height).T.astype(bool)


def decode_compressed_counts(text: str) -> list[int]:
    """Run lengths from COCO's compressed RLE string (pycocotools' `rleFrString`: 5-bit groups, delta-coded)."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text):
                raise ValueError("compressed RLE ends inside a number")
            code = ord(text[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"character {text[position]!r} is not valid in a compressed RLE")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _shape_problem(document: Any) -> str | None:
    """Why the parsed JSON is not a COCO instances document, or None."""
    if not isinstance(document, dict):
        return f"annotation file must hold a JSON object, not a {type(document).__name__}"
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(document.get(key), list)]
    if missing:
        return f"annotation file lacks the COCO list(s) {missing}"
    return None


def _match_images(
    records: list[Any], entries: Sequence[SourceEntry], source: str
) -> tuple[dict[Any, tuple[str, tuple[int, int]]], list[InputError]]:
    """COCO image id -> (source image id, (height, width)) for the images present in the source."""
    by_path = {entry.match_names[0]: entry for entry in entries if entry.match_names}
    by_name: dict[str, list[SourceEntry]] = {}
    for entry in entries:
        for name in entry.match_names[1:]:
            by_name.setdefault(name, []).append(entry)
    matched: dict[Any, tuple[str, tuple[int, int]]] = {}
    problems: list[InputError] = []
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("file_name"), str):
            continue
        file_name = record["file_name"]
        entry = by_path.get(file_name)
        if entry is None and len(by_name.get(Path(file_name).name, [])) == 1:
            entry = by_name[Path(file_name).name][0]
        if entry is None:
            continue
        size = (record.get("height"), record.get("width"))
        actual = (entry.file.height, entry.file.width)
        if size != actual:
            problems.append(
                InputError(
                    f"{source} image {record.get('id')} ({file_name})",
                    f"says the image is {size[1]}x{size[0]} but the file is {actual[1]}x{actual[0]}; "
                    "its annotations are ignored",
                )
            )
            continue
        matched[record.get("id")] = (entry.image_id, actual)
    return matched, problems


def _polygon(points: Any, width: int, height: int) -> np.ndarray:
    """A polygon's `[N, 2]` vertices, checked to be finite numbers lying within the image."""
    if not isinstance(points, list) or len(points) < 6 or len(points) % 2:
        raise InputError("", "a polygon must be a flat list of at least 3 x, y pairs")
    if not all(isinstance(value, (int, float)) and math.isfinite(value) for value in points):
        raise InputError("", "a polygon holds a value that is not a finite number")
    vertices = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    if low.min() < -EDGE_TOLERANCE or high[0] > width + EDGE_TOLERANCE or high[1] > height + EDGE_TOLERANCE:
        raise InputError(
            "",
            f"polygon spans x {low[0]:g}..{high[0]:g}, y {low[1]:g}..{high[1]:g}, outside the {width}x{height} image",
        )
    return vertices


def _rle_counts(segmentation: dict[str, Any], height: int, width: int) -> tuple[int, ...]:
    """Run lengths of an RLE object, checked against the image size."""
    if segmentation.get("size") != [height, width]:
        raise InputError("", f"RLE size {segmentation.get('size')!r} does not match the image's [{height}, {width}]")
    raw = segmentation.get("counts")
    try:
        if isinstance(raw, str):
            counts = decode_compressed_counts(raw)
        elif isinstance(raw, list) and all(isinstance(value, int) for value in raw):
            counts = raw
        else:
            raise ValueError("counts must be a string or a list of integers")
    except ValueError as error:
        raise InputError("", f"malformed RLE: {error}") from error
    if any(value < 0 for value in counts):
        raise InputError("", "malformed RLE: a run length is negative")
    if sum(counts) != height * width:
        raise InputError(
            "", f"RLE runs cover {sum(counts)} pixels, not the image's {height}x{width} = {height * width}"
        )
    return tuple(counts)
