"""Where real photographs come from: a folder, a Hub dataset or the built-in photos, behind one `ImageSource`.

Opening a source lists its images in a stable sorted order and runs only cheap checks (file type, magic
bytes, header size, symlinks), since it happens in the parent and again in every worker; full decoding
happens in `ImageSource.load`, one image at a time, inside the worker that needs it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from datagen.errors import ConfigError, InputError
from datagen.files import sha256_file
from realworld_edit.annotations import AnnotationIndex, load_annotations
from realworld_edit.entry import SourceEntry
from realworld_edit.hub_source import HUB_PREFIX
from realworld_edit.images import MIN_SIDE, decode_image, list_image_files, probe_image

DEFAULT_MAX_SIDE = 1024
"""Images are shrunk so their longer side is at most this many pixels (aspect kept); smaller ones stay as they are."""


@dataclass(frozen=True)
class ObjectMask:
    """One annotated object of a source image, at the size of `SourceImage.pixels`.

    Attributes:
        mask: `[H, W]` bool, True on the object.
        category: the annotation's category name, e.g. `"dog"`.
        annotation_id: the id the annotation file gave it, so a record can point back to it.
    """

    mask: np.ndarray
    category: str
    annotation_id: int


@dataclass(frozen=True)
class SourceImage:
    """One decoded, converted and resized photograph, ready to edit.

    Attributes:
        pixels: `[H, W, 3]` uint8 RGB, long side at most the source's `max_side`.
        image_id: stable across machines and runs: the relative path for a folder (`"trips/cat.jpg"`),
            `"builtin/astronaut"`, or `"hf:ORG/NAME/train/000012"` (split and row) for a Hub dataset
            (`"train/000012"` for a local folder in Hub layout).
        origin: where the file came from, for people, never an absolute path: the path relative to the
            folder, or `"hf:ORG/NAME split=train row=12"`.
        licence: the image's licence as far as the source states it (e.g. `"CC0-1.0"`), else a note
            saying where to look.
        credit: who made or published the image, as far as the source states it; may be "".
        objects: annotated objects (from `--annotations`), largest first; empty when none are known.
    """

    pixels: np.ndarray
    image_id: str
    origin: str
    licence: str
    credit: str
    objects: tuple[ObjectMask, ...] = ()

    def meta(self) -> dict[str, Any]:
        """The JSON-ready facts about the source image that a pair record's `meta` should carry."""
        return {
            "image_id": self.image_id,
            "origin": self.origin,
            "licence": self.licence,
            "credit": self.credit,
            "objects": len(self.objects),
        }


@dataclass
class ImageSource:
    """A fixed, sorted list of usable images; `load(i)` decodes image `i`.

    Attributes:
        name: what the source is, for messages and the run config (e.g. `"folder /data/photos"`).
        entries: the images that passed the cheap checks, in stable order.
        skipped: one `InputError` per file (or annotation problem) found unusable while opening.
        max_side: long-side limit applied by `load`.
        annotations: object masks per entry, or None without an annotation file.
        digest_parts: the kind of source and, for a Hub dataset, its id, split, column and revision.
        declared_licence: for a Hub dataset, the licence its card declares ("" for none); None otherwise.
    """

    name: str
    entries: list[SourceEntry]
    skipped: list[InputError] = field(default_factory=list)
    max_side: int = DEFAULT_MAX_SIDE
    annotations: AnnotationIndex | None = None
    digest_parts: tuple[str, ...] = ()
    declared_licence: str | None = None

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def image_ids(self) -> list[str]:
        """Stable ids of the usable images, in order."""
        return [entry.image_id for entry in self.entries]

    def load(self, index: int) -> SourceImage:
        """Decode, convert to RGB and resize image `index`, with its object masks.

        Every call decodes afresh (a caller that reuses photos keeps its own cache). The arrays are
        read-only so that a cached image cannot be drawn on by mistake: copy before editing.

        Raises:
            InputError: the file cannot be decoded in full (truncated, corrupt, gone or unreadable since
                the source was opened); the caller should draw another image and report it.
            IndexError: `index` is outside `0 .. len(self) - 1`.
        """
        entry = self.entries[index]
        pixels = decode_image(entry.file, max_side=self.max_side)
        _read_only(pixels)
        objects: tuple[ObjectMask, ...] = ()
        if self.annotations is not None:
            objects = tuple(
                ObjectMask(mask=_read_only(mask), category=category, annotation_id=annotation_id)
                for annotation_id, category, mask in self.annotations.masks(
                    entry.image_id, (entry.file.height, entry.file.width), pixels.shape[:2]
                )
            )
        return SourceImage(
            pixels=pixels,
            image_id=entry.image_id,
            origin=entry.origin,
            licence=entry.licence,
            credit=entry.credit,
            objects=objects,
        )

    @cached_property
    def digest(self) -> str:
        """sha256 over the source's identity, every usable image's id and bytes, and the annotation file.

        Computed on first use only, since it reads every file: a generator should expose it lazily (e.g. an
        `input_digest` property) so that only the runner's parent, which asks for it, pays that cost.
        """
        digest = hashlib.sha256()
        for part in self.digest_parts:
            digest.update(part.encode() + b"\0")
        for entry in self.entries:
            digest.update(entry.image_id.encode() + b"\0")
            digest.update(sha256_file(entry.file.path).encode())
        if self.annotations is not None:
            digest.update(b"annotations\0" + self.annotations.sha256.encode())
        return digest.hexdigest()


def open_source(
    spec: str | None,
    *,
    annotations: str | Path | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    split: str = "train",
    image_column: str = "image",
    max_images: int | None = None,
    cache_dir: str | Path | None = None,
) -> ImageSource:
    """Open an image source and list its usable images.

    Args:
        spec: None for the built-in photographs; `"hf:ORG/NAME"` for a Hub dataset (streamed, see
            `realworld_edit.hub_source`); anything else is a folder searched recursively for JPEG, PNG,
            WebP, BMP and TIFF files.
        annotations: a COCO-style `instances.json` whose images are matched to the source's by `file_name`.
        max_side: long-side limit in pixels for loaded images (at least `MIN_SIDE`).
        split: the Hub dataset's split.
        image_column: the Hub dataset's image column.
        max_images: use at most the first this many usable images (sorted order); None takes all of a
            folder and `hub_source.DEFAULT_MAX_IMAGES` rows of a Hub dataset, which has to be copied locally.
        cache_dir: where Hub images are materialised; default `$VZERO_CACHE` or `~/.cache/vision-zero`.

    Raises:
        ConfigError: an option is out of range, the folder or annotation file does not exist, the Hub
            dataset cannot be read, or no image of the source is usable (the message lists why).
    """
    if not isinstance(max_side, int) or max_side < MIN_SIDE:
        raise ConfigError(f"max_side must be an integer of at least {MIN_SIDE} pixels, got {max_side!r}")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ConfigError(f"max_images must be a positive integer or None, got {max_images!r}")
    annotation_path = _annotation_path(annotations)
    if spec is not None and not spec.strip():
        raise ConfigError("source is empty; give a folder, hf:ORG/NAME, or nothing for the built-in photos")
    if spec is None:
        from realworld_edit.builtin_photos import builtin_entries

        name, entries, skipped, parts = "builtin photos", *builtin_entries(), ("builtin",)
        declared = None
    elif spec.startswith(HUB_PREFIX):
        from realworld_edit.hub_source import hub_entries

        listing = hub_entries(
            spec[len(HUB_PREFIX) :],
            split=split,
            image_column=image_column,
            max_images=max_images,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
        )
        name, entries, skipped, parts = spec, listing.entries, listing.skipped, listing.identity
        declared = listing.licence
    else:
        # The folder's location is left out of the digest: the same files mounted elsewhere are the same input.
        name, parts = f"folder {Path(spec).resolve()}", ("folder",)
        entries, skipped = folder_entries(Path(spec), limit=max_images)
        declared = None
    entries = entries[:max_images]
    if not entries:
        raise ConfigError(f"no usable image in {name}: {_summary(skipped)}")
    index = None
    if annotation_path is not None:
        index, problems = load_annotations(annotation_path, entries)
        skipped = [*skipped, *problems]
    return ImageSource(
        name=name,
        entries=entries,
        skipped=list(skipped),
        max_side=max_side,
        annotations=index,
        digest_parts=parts,
        declared_licence=declared,
    )


def folder_entries(root: Path, *, limit: int | None = None) -> tuple[list[SourceEntry], list[InputError]]:
    """The usable images under `root` in sorted relative-path order, and one error per unusable file.

    With a `limit`, checking stops once that many images are usable: later files are neither probed nor
    reported.

    Raises:
        ConfigError: `root` does not exist or is not a directory.
    """
    if not root.exists():
        raise ConfigError(f"image folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise ConfigError(f"image folder {str(root)!r} is not a directory")
    candidates, skipped = list_image_files(root)
    entries: list[SourceEntry] = []
    for relative, path in candidates:
        if limit is not None and len(entries) == limit:
            break
        try:
            file = probe_image(path, root=root)
        except InputError as error:
            skipped.append(error)
            continue
        entries.append(
            SourceEntry(
                file=file,
                image_id=relative,
                origin=relative,
                licence="not stated (user's folder)",
                credit="",
                match_names=(relative, Path(relative).name),
            )
        )
    return entries, skipped


def _summary(skipped: list[InputError], shown: int = 10) -> str:
    """The first `shown` reasons a source has no usable image, and how many more there are."""
    if not skipped:
        return "it holds no JPEG, PNG, WebP, BMP or TIFF file"
    more = f"; and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return "; ".join(str(error) for error in skipped[:shown]) + more


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _annotation_path(annotations: str | Path | None) -> Path | None:
    """The annotation file as a path, checked to exist (its content is checked later, item by item)."""
    if annotations is None:
        return None
    path = Path(annotations)
    if not path.is_file():
        raise ConfigError(f"annotation file {str(path)!r} does not exist or is not a file")
    return path
