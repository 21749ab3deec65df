"""The built-in photographs: real photos shipped inside the scikit-image wheel, so the demo runs offline.

Only files that are in the wheel itself are used (never `skimage.data` functions, which may download
through pooch), and each carries the licence and credit that scikit-image's `skimage/data/_fetchers.py`
docstrings state for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from datagen.errors import ConfigError, InputError
from realworld_edit.entry import SourceEntry
from realworld_edit.images import probe_image


@dataclass(frozen=True)
class BuiltinPhoto:
    """One bundled photograph and what scikit-image says about where it comes from."""

    name: str
    file: str
    """Path relative to the installed `skimage` package."""
    licence: str
    credit: str


BUILTIN_PHOTOS = (
    BuiltinPhoto(
        "astronaut",
        "data/astronaut.png",
        "Public domain (no known copyright restrictions)",
        "NASA (Great Images database, https://flic.kr/p/r9qvLn); via scikit-image",
    ),
    BuiltinPhoto("camera", "data/camera.png", "CC0-1.0", "Lav Varshney (photographer); via scikit-image"),
    BuiltinPhoto("chelsea", "data/chelsea.png", "CC0-1.0", "Stefan van der Walt (photographer); via scikit-image"),
    BuiltinPhoto(
        "coffee",
        "data/coffee.png",
        "CC0-1.0",
        "Rachel Michetti (photographer), courtesy of Pikolo Espresso Bar; via scikit-image",
    ),
    BuiltinPhoto(
        "coins",
        "data/coins.png",
        "No known copyright restrictions",
        "Brooklyn Museum Collection (https://www.brooklynmuseum.org/opencollection/archives/image/51611); "
        "via scikit-image",
    ),
    BuiltinPhoto(
        "rocket",
        "data/rocket.jpg",
        "Public domain (released by SpaceX)",
        "SpaceX (https://www.flickr.com/photos/spacexphotos/16511594820/); via scikit-image",
    ),
)
"""In image-id order. Left out on purpose: scans, drawings, micrographs and the Middlebury stereo pair
(whose licence scikit-image does not state)."""


def builtin_entries() -> tuple[list[SourceEntry], list[InputError]]:
    """Entries for the bundled photographs present on disk, and one error per photo missing or unusable.

    Raises:
        ConfigError: scikit-image is not installed.
    """
    package = find_spec("skimage")
    if package is None or not package.submodule_search_locations:
        raise ConfigError("the built-in photos come from scikit-image, which is not installed; pass --source DIR")
    root = Path(next(iter(package.submodule_search_locations)))
    entries = []
    skipped = []
    for photo in BUILTIN_PHOTOS:
        path = root / photo.file
        if not path.is_file():
            skipped.append(InputError(f"builtin/{photo.name}", f"{photo.file} is not in this scikit-image install"))
            continue
        try:
            file = probe_image(path, root=root)
        except InputError as error:
            skipped.append(error)
            continue
        entries.append(
            SourceEntry(
                file=file,
                image_id=f"builtin/{photo.name}",
                origin=f"scikit-image {photo.file}",
                licence=photo.licence,
                credit=photo.credit,
                match_names=(Path(photo.file).name,),
            )
        )
    return entries, skipped
