"""Before/after pairs from an existing image-editing dataset (MagicBrush, HQ-Edit, UltraEdit, ...), listed and checked.

The dataset is read through `hub_source` (a Hub id or a local folder in Hub layout, streamed once into a
cache). Opening checks what is cheap for every row (both images present and of one size, a mask of that
size); decoding happens in `EditPairSource.load`, one pair at a time, in the worker that needs it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from datagen.errors import ConfigError, InputError
from datagen.files import sha256_file
from realworld_edit.hub_source import HUB_PREFIX, CachedRows, HubColumns, cached_rows
from realworld_edit.images import ImageFile, decode_image, probe_image


@dataclass(frozen=True)
class PairColumns:
    """Which columns of an editing dataset hold the before image, the after image, the instruction and a mask."""

    before: str
    after: str
    instruction: str | None = None
    mask: str | None = None


LAYOUTS: dict[str, PairColumns] = {
    "magicbrush": PairColumns("source_img", "target_img", "instruction", "mask_img"),
    "hq-edit": PairColumns("input_image", "output_image", "edit"),
    "ultraedit": PairColumns("source_image", "edited_image", "edit_prompt", "mask_image"),
    "imgedit": PairColumns("input_image", "output_image", "instruction"),
}
"""Column names of known layouts (`--layout`); the ImgEdit entry is for its pairs converted to an imagefolder
with a `metadata.jsonl` (its release ships tar archives and JSON, which `datasets` does not stream as pairs)."""


@dataclass(frozen=True)
class PairEntry:
    """One listed pair whose image headers passed the checks.

    Attributes:
        pair_id: stable id, e.g. `hf:osunlp/MagicBrush/train/000012` or `train/000012` in a local folder.
        origin: the row, for people (`hf:ORG/NAME split=train row=12`).
        before: the unedited image.
        after: the edited image, of the same size.
        mask: the dataset's mask of the edit (white = edited), of the same size, or None.
        instruction: the edit instruction, "" when the dataset has none.
    """

    pair_id: str
    origin: str
    before: ImageFile
    after: ImageFile
    mask: ImageFile | None
    instruction: str


@dataclass(frozen=True)
class LoadedPair:
    """A decoded pair at the source's `max_side`: `[H, W, 3]` uint8 RGB images and an `[H, W]` uint8 mask or None."""

    entry: PairEntry
    before: np.ndarray
    after: np.ndarray
    mask: np.ndarray | None


@dataclass
class EditPairSource:
    """The usable pairs of an editing dataset, in source order; `load(i)` decodes pair `i`."""

    name: str
    entries: list[PairEntry]
    skipped: list[InputError] = field(default_factory=list)
    max_side: int = 1024
    declared_licence: str = ""
    digest_parts: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int) -> LoadedPair:
        """Decode pair `index`: both images (and the mask) at the same size, long side at most `max_side`.

        Raises:
            InputError: an image cannot be decoded in full.
        """
        entry = self.entries[index]
        before = decode_image(entry.before, max_side=self.max_side)
        after = decode_image(entry.after, max_side=self.max_side)
        mask = None
        if entry.mask is not None:
            mask = decode_image(entry.mask, max_side=self.max_side).max(axis=2)
        return LoadedPair(entry, before, after, mask)

    @cached_property
    def digest(self) -> str:
        """sha256 over the source's identity and every usable pair's files (read once, in the runner's parent)."""
        digest = hashlib.sha256()
        for part in self.digest_parts:
            digest.update(part.encode() + b"\0")
        for entry in self.entries:
            digest.update(entry.pair_id.encode() + b"\0" + entry.instruction.encode() + b"\0")
            for file in (entry.before, entry.after, entry.mask):
                digest.update(sha256_file(file.path).encode() if file is not None else b"-")
        return digest.hexdigest()


def open_pairs(
    spec: str,
    *,
    columns: PairColumns,
    split: str = "train",
    max_pairs: int | None = None,
    max_side: int = 1024,
    cache_dir: Path | None = None,
) -> EditPairSource:
    """Open an editing dataset and list its usable pairs, in source order.

    Args:
        spec: `hf:ORG/NAME`, or a local folder in Hub layout (Parquet, or an imagefolder with metadata).
        columns: the dataset's column names.
        split: the split to read.
        max_pairs: read only the first this many rows (None: all).
        max_side: long-side limit of loaded images.
        cache_dir: where rows are materialised; default `$VZERO_CACHE` or `~/.cache/vision-zero`.

    Raises:
        ConfigError: the dataset, split or a column does not exist (the message lists the columns that
            do), or no row of it is a usable pair (the message says why, row by row).
    """
    name = spec[len(HUB_PREFIX) :] if spec.startswith(HUB_PREFIX) else spec
    if not spec.startswith(HUB_PREFIX) and not Path(spec).is_dir():
        raise ConfigError(f"pair source {spec!r} is neither hf:ORG/NAME nor an existing folder")
    hub_columns = HubColumns(
        images=(columns.before, columns.after),
        optional_images=(columns.mask,) if columns.mask else (),
        texts=(columns.instruction,) if columns.instruction else (),
    )
    cached = cached_rows(name, split=split, columns=hub_columns, max_rows=max_pairs, cache_dir=cache_dir)
    entries, skipped = [], list(cached.skipped)
    for row in cached.rows:
        try:
            entries.append(_entry(cached, row, split, columns))
        except InputError as error:
            skipped.append(error)
    if not entries:
        shown = "; ".join(str(error) for error in skipped[:10]) or "it has no rows"
        raise ConfigError(f"no usable before/after pair in {cached.label or 'the folder'} split {split!r}: {shown}")
    return EditPairSource(
        name=cached.label or "local folder",
        entries=entries,
        skipped=skipped,
        max_side=max_side,
        declared_licence=cached.licence,
        digest_parts=cached.identity,
    )


def _entry(cached: CachedRows, row: dict, split: str, columns: PairColumns) -> PairEntry:
    """One row as a `PairEntry`, after the header checks.

    Raises:
        InputError: an image is not decodable from its header, or the sizes of before, after and mask differ.
    """
    source = cached.row_source(split, row["row"])
    files = {
        column: probe_image(cached.folder / file, root=cached.folder, name=f"{source} {column}")
        for column, file in row["files"].items()
    }
    before, after = files[columns.before], files[columns.after]
    if (before.width, before.height) != (after.width, after.height):
        raise InputError(
            source,
            f"before ({columns.before}) is {before.width}x{before.height} but after ({columns.after}) is "
            f"{after.width}x{after.height}; the images must be the same size",
        )
    mask = files.get(columns.mask) if columns.mask else None
    if mask is not None and (mask.width, mask.height) != (before.width, before.height):
        raise InputError(
            source,
            f"mask ({columns.mask}) is {mask.width}x{mask.height} but the images are {before.width}x{before.height}",
        )
    instruction = row["texts"].get(columns.instruction, "") if columns.instruction else ""
    return PairEntry(cached.row_id(split, row["row"]), source, before, after, mask, instruction)
