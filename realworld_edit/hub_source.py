"""Rows of a Hugging Face dataset (`hf:ORG/NAME`, or a local folder in Hub layout): streamed once into a local cache.

A stream has no random access and may change upstream, while a generator must be a pure function of
(config, index) in every worker. So the rows a run needs are written once to a cache folder (atomically,
with a completion marker naming the dataset revision) and every process lists that folder. The photo
source caches one image column; the edit-pair source caches before, after and mask images plus the
instruction text of each row (`HubColumns`).

Nothing here names a local folder by its absolute path in what reaches a dataset: a Hub id is named as
it is, a local folder's rows by split and row number, relative to the folder.
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

import yaml

from datagen.errors import ConfigError, InputError
from datagen.layout import CARD_NAME
from realworld_edit.entry import SourceEntry
from realworld_edit.images import probe_image, sniff_format

HUB_PREFIX = "hf:"
"""What marks a source as a Hub dataset (or a local folder in Hub layout) rather than a folder of image files."""
DEFAULT_MAX_IMAGES = 500
"""Rows materialised from a Hub dataset when `max_images` is not given."""
CACHE_ENV = "VZERO_CACHE"
MARKER = "complete.json"
"""Written last into the cache folder: its presence means every row was materialised."""
CACHE_LAYOUT = 2
"""Version of the cache folder's layout; part of its key, so that an older layout is never read."""
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


@dataclass(frozen=True)
class HubColumns:
    """The columns to materialise: image columns every row needs, image columns it may lack, and text columns."""

    images: tuple[str, ...]
    optional_images: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.images, *self.optional_images, *self.texts)


@dataclass(frozen=True)
class CachedRows:
    """The materialised rows of one split.

    Attributes:
        folder: the cache folder holding the rows' image files.
        rows: per usable row: `row` (its number in the split), `files` (column -> file name in `folder`),
            `texts` (column -> text), `names` (the first image column's original file names, if any).
        skipped: one error per row lacking a required cell, named by `row_source`.
        licence: the licence the dataset declares, "" when it declares none.
        identity: what goes into the run digest (dataset, split, columns, revision).
        label: how outputs name the dataset: its Hub id, or "" for a local folder (rows are then named
            relative to it).
    """

    folder: Path
    rows: list[dict[str, Any]]
    skipped: list[InputError]
    licence: str
    identity: tuple[str, ...]
    label: str

    def row_id(self, split: str, row: int) -> str:
        """Stable id of a row: `hf:ORG/NAME/train/000012`, or `train/000012` in a local folder."""
        return f"{f'hf:{self.label}/' if self.label else ''}{split}/{row:06d}"

    def row_source(self, split: str, row: int) -> str:
        """A row for people: `hf:ORG/NAME split=train row=12`, or `split=train row=12` in a local folder."""
        return row_source(self.label, split, row)


@dataclass(frozen=True)
class HubListing:
    """What `hub_entries` found: usable entries, unusable rows, and the identity that goes into the run digest."""

    entries: list[SourceEntry]
    skipped: list[InputError]
    identity: tuple[str, ...]
    licence: str


def hub_entries(
    name: str, *, split: str, image_column: str, max_images: int | None, cache_dir: Path | None
) -> HubListing:
    """Entries for the first `max_images` rows of dataset `name`, materialising them on first use.

    Args:
        name: a Hub id `ORG/NAME`, or a local folder in Hub layout (read the same way).
        split: the split to stream.
        image_column: the column holding images (`datasets.Image`, or raw bytes / {"bytes", "path"}).
        max_images: rows to take from the start of the stream; None takes `DEFAULT_MAX_IMAGES`.
        cache_dir: cache root; default `$VZERO_CACHE` or `~/.cache/vision-zero`.

    Raises:
        ConfigError: the dataset, split or column does not exist or the stream cannot be read.
    """
    count = max_images if max_images is not None else DEFAULT_MAX_IMAGES
    cached = cached_rows(name, split=split, columns=HubColumns((image_column,)), max_rows=count, cache_dir=cache_dir)
    skipped = list(cached.skipped)
    entries = []
    for row in cached.rows:
        source = cached.row_source(split, row["row"])
        try:
            file = probe_image(cached.folder / row["files"][image_column], root=cached.folder, name=source)
        except InputError as error:
            skipped.append(error)
            continue
        entries.append(
            SourceEntry(
                file=file,
                image_id=cached.row_id(split, row["row"]),
                origin=source,
                licence=cached.licence or f"not stated; see the dataset card of {cached.label or 'the source'}",
                credit=cached.label,
                match_names=tuple(row["names"]),
            )
        )
    return HubListing(entries=entries, skipped=skipped, identity=cached.identity, licence=cached.licence)


def cached_rows(
    name: str, *, split: str, columns: HubColumns, max_rows: int | None, cache_dir: Path | None
) -> CachedRows:
    """The first `max_rows` rows (None: all) of `columns` of dataset `name`, materialised on first use.

    Raises:
        ConfigError: the id is malformed, or the dataset, split or a column does not exist, or the stream
            cannot be read.
    """
    if not re.fullmatch(r"[^\s]+", name or ""):
        raise ConfigError(f"Hub dataset id {name!r} is empty or contains spaces; use hf:ORG/NAME")
    local = _local_revision(name)
    key = [name, split, list(columns.images), list(columns.optional_images), list(columns.texts), max_rows, local]
    folder = cache_folder(name, split=split, key=key, cache_dir=cache_dir)
    if not (folder / MARKER).is_file():
        revision, licence = (local, _card_licence(Path(name))) if local else _hub_facts(name)
        materialise(name, folder, split=split, columns=columns, max_rows=max_rows, revision=revision, licence=licence)
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    label = dataset_label(name)
    identity = (
        f"hub {label or 'local folder'}",
        f"split {split}",
        f"columns {list(columns.names)}",
        f"revision {marker['revision']}",
    )
    return CachedRows(
        folder=folder,
        rows=marker["rows"],
        skipped=[InputError(row_source(label, split, item["row"]), item["reason"]) for item in marker["skipped"]],
        licence=marker["licence"],
        identity=identity,
        label=label,
    )


def dataset_label(name: str) -> str:
    """The Hub id as given, or "" for a local folder, whose absolute path must not reach a dataset."""
    return "" if Path(name).is_dir() else name


def row_source(label: str, split: str, row: int) -> str:
    """See `CachedRows.row_source`."""
    return f"{f'hf:{label} ' if label else ''}split={split} row={row}"


def cache_folder(name: str, *, split: str, key: list[Any], cache_dir: Path | None) -> Path:
    """`<cache>/sources/<dataset>-<split>-<hash>`: one folder per distinct `key` (dataset, split, columns, rows...)."""
    root = cache_dir or Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vision-zero")
    digest = hashlib.sha256(json.dumps([CACHE_LAYOUT, *key]).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip("/")).strip("_")[-60:] or "dataset"
    return root / "sources" / f"{slug}-{re.sub(r'[^A-Za-z0-9._-]+', '_', split)}-{digest}"


def materialise(
    name: str, folder: Path, *, split: str, columns: HubColumns, max_rows: int | None, revision: str, licence: str
) -> None:
    """Stream the first `max_rows` rows and write their images (bytes as stored, not re-encoded) under `folder`.

    Everything goes to a temporary sibling that is renamed into place with its marker, so a crash or a
    concurrent process never leaves a folder that looks complete but is not.

    Raises:
        ConfigError: the dataset cannot be streamed, or a column is not one of its columns.
    """
    stream = _open_stream(name, split=split, columns=columns)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        rows, skipped = _write_rows(stream, staging, name=name, columns=columns, limit=max_rows)
        marker = {
            "split": split,
            "columns": list(columns.names),
            "revision": revision,
            "licence": licence or str(stream.info.license or ""),
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


def _open_stream(name: str, *, split: str, columns: HubColumns) -> Any:
    """The streamed split with its image columns left undecoded."""
    import datasets

    label = dataset_label(name) or "the local folder"
    try:
        stream = datasets.load_dataset(name, split=split, streaming=True)
    except Exception as error:  # noqa: BLE001 - datasets raises many types (network, missing split, bad files)
        raise ConfigError(
            f"cannot stream Hub dataset {label!r} split {split!r}: {type(error).__name__}: {error}"
        ) from error
    if stream.features is not None:
        missing = [column for column in columns.names if column not in stream.features]
        if missing:
            raise ConfigError(
                f"Hub dataset {label!r} has no column {', '.join(map(repr, missing))}; "
                f"its columns are {list(stream.features)}"
            )
        for column in (*columns.images, *columns.optional_images):
            if isinstance(stream.features[column], datasets.Image):
                stream = stream.cast_column(column, datasets.Image(decode=False))
    return stream


def _write_rows(
    stream: Any, staging: Path, *, name: str, columns: HubColumns, limit: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write each row's images as `<row>-<column number>.<ext>`; a row lacking a required cell becomes a skip record."""
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    label = dataset_label(name) or "the local folder"
    try:
        for row_number, row in enumerate(stream if limit is None else stream.take(limit)):
            missing = [column for column in columns.names if column not in row]
            if missing:
                raise ConfigError(f"Hub dataset {label!r} has no column {missing[0]!r}; its columns are {list(row)}")
            try:
                rows.append(_write_row(row, row_number, staging, columns))
            except InputError as error:
                skipped.append({"row": row_number, "reason": error.reason})
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001 - a stream fails with network, Arrow or decoding errors alike
        raise ConfigError(f"reading Hub dataset {label!r} failed: {type(error).__name__}: {error}") from error
    return rows, skipped


def _write_row(row: dict[str, Any], number: int, staging: Path, columns: HubColumns) -> dict[str, Any]:
    """Write one row's image cells and return its marker record.

    Raises:
        InputError: a required image cell is empty or not an image, or a text cell is not text.
    """
    files: dict[str, str] = {}
    names: list[str] = []
    for position, column in enumerate((*columns.images, *columns.optional_images)):
        if row[column] is None and column in columns.optional_images:
            continue
        data, original = _image_bytes(row[column], column)
        image_format = sniff_format(data[:64], "")
        files[column] = f"{number:06d}-{position}{_EXTENSIONS[image_format]}"
        (staging / files[column]).write_bytes(data)
        if position == 0 and original:
            names = list(dict.fromkeys([original, Path(original).name]))
    texts = {}
    for column in columns.texts:
        value = row[column]
        if not isinstance(value, str) or not value.strip():
            raise InputError("", f"the {column} cell holds no text ({type(value).__name__})")
        texts[column] = value
    return {"row": number, "files": files, "texts": texts, "names": names}


def _image_bytes(value: Any, column: str) -> tuple[bytes, str]:
    """The encoded image of one cell of `column` and its original file name ("" if unknown; never an absolute path).

    Raises:
        InputError: the cell is empty or holds no image bytes.
    """
    if value is None:
        raise InputError("", f"the {column} cell is empty")
    if isinstance(value, (bytes, bytearray)):
        data, original = bytes(value), ""
    elif isinstance(value, dict):
        data, original = value.get("bytes"), str(value.get("path") or "")
        if data is None and original:
            data = _read_referenced(original)
    else:
        raise InputError("", f"the {column} cell holds a {type(value).__name__}, not image bytes")
    if not data:
        raise InputError("", f"the {column} cell holds no bytes")
    return data, Path(original).name if Path(original).is_absolute() else original


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
        raise InputError(
            "", f"cannot read the image file the row points to ({Path(path).name}): {error.strerror}"
        ) from error


def _local_revision(name: str) -> str | None:
    """For a local folder, a digest of its files' names, sizes and times (None for a Hub id).

    Part of the cache key, so that a changed folder gets a fresh cache without every byte being read.
    """
    root = Path(name)
    if not root.is_dir():
        return None
    listing = sorted(
        (path.relative_to(root).as_posix(), path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file()
    )
    return "local " + hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]


def _hub_facts(name: str) -> tuple[str, str]:
    """The commit the Hub serves for `name` now and the licence its card declares ("" if none), read once."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().dataset_info(name)
    except Exception as error:  # noqa: BLE001 - the data is streamed next; an unknown revision is recorded as such
        return f"unresolved ({type(error).__name__})", ""
    licence = info.card_data.get("license") if info.card_data is not None else None
    return str(info.sha), _licence_text(licence)


def _card_licence(folder: Path) -> str:
    """The `license` a local folder's dataset card (`README.md` front matter) declares, "" if none."""
    card = folder / CARD_NAME
    if not card.is_file():
        return ""
    text = card.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return ""
    try:
        metadata = yaml.safe_load(text.split("---", 2)[1])
    except yaml.YAMLError:
        return ""
    return _licence_text(metadata.get("license") if isinstance(metadata, dict) else None)


def _licence_text(value: Any) -> str:
    """A card's `license` value (a string, or a list of them) as one string."""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value) if value else ""
