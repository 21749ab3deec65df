"""`SourceEntry`: one listed, header-checked image that every kind of source produces before decoding."""

from __future__ import annotations

from dataclasses import dataclass

from realworld_edit.images import ImageFile


@dataclass(frozen=True)
class SourceEntry:
    """One listed (not yet decoded) image: the file plus what the source knows about it.

    Attributes:
        file: the header-checked file.
        image_id: stable id, see `SourceImage.image_id`.
        origin: where it came from, for people.
        licence: its licence as the source states it.
        credit: its author or publisher as the source states it.
        match_names: names an annotation file may use for it: a path relative to the source first, then
            bare file names.
    """

    file: ImageFile
    image_id: str
    origin: str
    licence: str
    credit: str
    match_names: tuple[str, ...] = ()
