"""Images from a Hugging Face dataset (`--source hf:ORG/NAME`): streamed once into a local cache, then read as files.

A stream has no random access and may change upstream, while a generator must be a pure function of
(config, index) in every worker. So the first `max_images` rows are written once to a cache folder
(atomically, with a completion marker naming the dataset revision) and every process lists that folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.errors import ConfigError, InputError
from realworld_edit.entry import SourceEntry
from realworld_edit.images import probe_image, sniff_format

DEFAULT_MAX_IMAGES = 500
"""Rows materialised from a Hub dataset when `max_images` is not given."""
CACHE_ENV = "VZERO_CACHE"
MARKER = "complete.json"
"""Written last into the cache folder: its presence means every row was materialised."""
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


@dataclass(frozen=True)
class HubListing:
    """What `hub_entries` found: usable entries, unusable rows, and the identity that goes into the run digest."""

    entries: list[SourceEntry]
    skipped: list[InputError]
    identity: tuple[str, ...]


def hub_entries(
    name: str, *, split: str, image_column: str, max_images: int | None, cache_dir: Path | None
) -> HubListing:
    """Entries for the first `max_images` rows of dataset `name`, materialising them on first use.

    Args:
        name: a Hub id `ORG/NAME`, or a local folder in Hub layout (read the same way; used by tests).
        split: the split to stream.
        image_column: the column holding images (`datasets.Image`, or raw bytes / {"bytes", "path"}).
        max_images: rows to take from the start of the stream; None takes `DEFAULT_MAX_IMAGES`.
        cache_dir: cache root; default `$VZERO_CACHE` or `~/.cache/vision-zero`.

    Raises:
        ConfigError: the dataset, split or column does not exist or the stream cannot be read.
    """
    if not re.fullmatch(r"[^\s]+", name or ""):
        raise ConfigError(f"Hub dataset id {name!r} is empty or contains spaces; use hf:ORG/NAME")
    count = max_images if max_images is not None else DEFAULT_MAX_IMAGES
    folder = cache_folder(name, split=split, image_column=image_column, max_images=count, cache_dir=cache_dir)
    if not (folder / MARKER).is_file():
        materialise(name, folder, split=split, image_column=image_column, max_images=count)
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    skipped = [InputError(item["source"], item["reason"]) for item in marker["skipped"]]
    entries = []
    for row in marker["rows"]:
        source = f"hf:{name} split={split} row={row['row']}"
        try:
            file = probe_image(folder / row["file"], root=folder)
        except InputError as error:
            skipped.append(InputError(source, error.reason))
            continue
        entries.append(
            SourceEntry(
                file=file,
                image_id=f"hf:{name}/{split}/{row['row']:06d}",
                origin=source,
                licence=marker["licence"] or f"not stated; see the dataset card of {name}",
                credit=name,
                match_names=tuple(row["names"]),
            )
        )
    identity = (f"hub {name}", f"split {split}", f"column {image_column}", f"revision {marker['revision']}")
    return HubListing(entries=entries, skipped=skipped, identity=identity)


def cache_folder(name: str, *, split: str, image_column: str, max_images: int, cache_dir: Path | None) -> Path:
    """`<cache>/sources/<dataset>-<split>-<hash>`: one folder per (dataset, split, column, row count)."""
    root = cache_dir or Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vision-zero")
    key = hashlib.sha256(json.dumps([name, split, image_column, max_images]).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip("/")).strip("_")[-60:] or "dataset"
    return root / "sources" / f"{slug}-{re.sub(r'[^A-Za-z0-9._-]+', '_', split)}-{key}"


def materialise(name: str, folder: Path, *, split: str, image_column: str, max_images: int) -> None:
    """Stream the first `max_images` rows and write their image bytes (as stored, not re-encoded) under `folder`.

    Everything goes to a temporary sibling that is renamed into place with its marker, so a crash or a
    concurrent process never leaves a folder that looks complete but is not.

    Raises:
        ConfigError: the dataset cannot be streamed, or `image_column` is not one of its columns.
    """
    stream, licence = _open_stream(name, split=split, image_column=image_column)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        rows, skipped = _write_rows(
            stream, staging, name=name, split=split, image_column=image_column, limit=max_images
        )
        marker = {
            "dataset": name,
            "split": split,
            "image_column": image_column,
            "revision": _revision(name),
            "licence": licence,
            "rows": rows,
            "skipped": skipped,
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / MARKER).is_file():
                raise
            # Another process finished the same folder first; its content is the same rows.
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _open_stream(name: str, *, split: str, image_column: str) -> tuple[Any, str]:
    """The streamed split with `image_column` left undecoded, and the dataset's stated licence ("" if none)."""
    import datasets

    try:
        stream = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as error:  # noqa: BLE001 - datasets raises many types (network, missing split, bad files)
        raise ConfigError(
            f"cannot stream Hub dataset {name!r} split {split!r}: {type(error).__name__}: {error}"
        ) from error
    columns = list(stream.features or {})
    if stream.features is not None and image_column not in columns:
        raise ConfigError(f"Hub dataset {name!r} has no column {image_column!r}; its columns are {columns}")
    if stream.features is not None and isinstance(stream.features[image_column], datasets.Image):
        stream = stream.cast_column(image_column, datasets.Image(decode=False))
    return stream, str(stream.info.license or "")


def _write_rows(
    stream: Any, staging: Path, *, name: str, split: str, image_column: str, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Write each row's image bytes as `<row>.<ext>`; rows without usable bytes become skip records."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    try:
        for row_number, row in enumerate(stream.take(limit)):
            source = f"hf:{name} split={split} row={row_number}"
            if image_column not in row:
                raise ConfigError(f"Hub dataset {name!r} has no column {image_column!r}; its columns are {list(row)}")
            try:
                data, original = _image_bytes(row[image_column])
                image_format = sniff_format(data[:64], source)
            except InputError as error:
                skipped.append({"source": source, "reason": error.reason})
                continue
            file_name = f"{row_number:06d}{_EXTENSIONS[image_format]}"
            (staging / file_name).write_bytes(data)
            names = [original, Path(original).name] if original else []
            rows.append({"row": row_number, "file": file_name, "names": list(dict.fromkeys(names))})
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - a stream fails with network, Arrow or decoding errors alike
        raise ConfigError(
            f"reading Hub dataset {name!r} split {split!r} failed: {type(error).__name__}: {error}"
        ) from error
    return rows, skipped


def _image_bytes(value: Any) -> tuple[bytes, str]:
    """The encoded image of one cell and its original file name ("" if unknown).

    Raises:
        InputError: the cell is empty or holds no image bytes.
    """
    if value is None:
        raise InputError("", "the image cell is empty")
    if isinstance(value, (bytes, bytearray)):
        data, original = bytes(value), ""
    elif isinstance(value, dict):
        data, original = value.get("bytes"), str(value.get("path") or "")
        if data is None and original:
            data = _read_referenced(original)
    else:
        raise InputError("", f"the image cell holds a {type(value).__name__}, not image bytes")
    if not data:
        raise InputError("", "the image cell holds no bytes")
    return data, original


def _read_referenced(path: str) -> bytes:
    """The bytes of an image a row points to instead of embedding (an `imagefolder` dataset: local or `hf://`).

    Raises:
        InputError: the file cannot be read.
    """
    from datasets.utils.file_utils import xopen

    try:
        with xopen(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise InputError("", f"cannot read the image file the row points to ({path}): {error}") from error


def _revision(name: str) -> str:
    """The commit the Hub serves for `name` now; a local folder has none ("local")."""
    if Path(name).is_dir():
        return "local"
    from huggingface_hub import HfApi

    try:
        return str(HfApi().dataset_info(name).sha)
    except Exception as error:  # noqa: BLE001 - the data was just streamed; an unknown revision is recorded as such
        return f"unresolved ({type(error).__name__})"
