"""`vzero export --format vision-zero`: a dataset folder in the layout of the original Vision-Zero release.

The release's training code reads, per pair, `<base>_original.png` (what civilians see) beside
`<base>_modified.png` (what the spy sees) and a `<base>.json` change log. The images are written as the
stored PNG bytes, unchanged; `<base>` is the pair's id, so names are unique and stable across exports.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from datagen.errors import ConfigError, DatasetError
from datagen.files import atomic_write_bytes
from datagen.reading import PNG_SIGNATURE, iter_rows
from datagen.record import CHANGED_OBJECTS

VISION_ZERO_FORMAT = "vision-zero"
EXPORT_FORMATS = (VISION_ZERO_FORMAT,)
SAFE_BASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
COLUMNS = ["id", "domain", "civilian", "spy", "diff_boxes", "edits", "description", "difficulty", "meta", "seed"]


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    pairs: int


def pair_files(base: str) -> tuple[str, str, str]:
    """The three file names of one pair in the release's layout."""
    return f"{base}_original.png", f"{base}_modified.png", f"{base}.json"


def png_of(image: dict[str, Any]) -> bytes:
    """The image as PNG bytes: stored PNGs as they are, anything else re-encoded."""
    data = image["bytes"]
    if data[:8] == PNG_SIGNATURE:
        return data
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buffer, format="PNG")
    return buffer.getvalue()


def changed_objects(meta: dict[str, Any]) -> list[int]:
    """The indices a domain recorded under `meta["changed_objects"]`; empty for domains without objects.

    Read from the structured ground truth, never from the wording of `edits` or `description`, which belongs
    to each domain and may change.
    """
    return [int(index) for index in meta.get(CHANGED_OBJECTS, [])]


def change_log(row: dict[str, Any]) -> dict[str, Any]:
    """The per-pair JSON: which objects and regions changed, and each change's before and after."""
    original, modified, _ = pair_files(row["id"])
    meta = json.loads(row["meta"])
    return {
        "id": row["id"],
        "domain": row["domain"],
        "original_image": original,
        "modified_image": modified,
        "description": row["description"],
        "num_changes": len(row["edits"]),
        "changed_objects": changed_objects(meta),
        "changes": [
            {"op": edit["op"], "target": edit["target"], "before": edit["before"], "after": edit["after"]}
            for edit in row["edits"]
        ],
        "changed_regions": [list(box) for box in row["diff_boxes"]],
        "difficulty": round(float(row["difficulty"]), 6),
        "seed": row["seed"],
        "meta": meta,
    }


def exported_files(row: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    base = row["id"]
    if not SAFE_BASE.match(base):
        raise DatasetError(f"pair id {base!r} cannot be a file name (letters, digits, '_', '-', '.')")
    original, modified, log = pair_files(base)
    yield original, png_of(row["civilian"])
    yield modified, png_of(row["spy"])
    yield log, (json.dumps(change_log(row), indent=2, ensure_ascii=False) + "\n").encode()


def export_dataset(dataset_dir: Path, out: Path, *, export_format: str = VISION_ZERO_FORMAT) -> ExportSummary:
    """Write every pair of `dataset_dir` into the folder `out` in `export_format`.

    Each file is written under a temporary name and renamed, so re-running after an interruption
    rewrites the same names and leaves no partial files.

    Raises:
        ConfigError: an unknown format, or `out` is a file.
        DatasetError: the folder is not a pair dataset, or a pair id cannot be a file name.
    """
    if export_format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {export_format!r}; choose one of {list(EXPORT_FORMATS)}")
    if not dataset_dir.is_dir():
        raise DatasetError(f"{dataset_dir} is not a dataset folder; to export a Hub dataset, `vzero pull` it first")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    pairs = 0
    for row in iter_rows(dataset_dir, COLUMNS):
        for name, data in exported_files(row):
            atomic_write_bytes(out / name, data)
        pairs += 1
    return ExportSummary(out, pairs)
