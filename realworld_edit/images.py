"""Reading image files safely: listing, header-only checks, full decoding to RGB uint8, and resizing.

Checks are split by cost. `probe_image` reads only a file's first bytes and header (it runs for every
file whenever a source is opened, in the parent and each worker); `decode_image` decodes pixels and is
called for one image at a time. Every way a file can be unusable becomes an `InputError` whose reason
says what is wrong, so a folder of thousands loses only its bad files.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from datagen.errors import InputError

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MIN_SIDE = 64
"""Images with a shorter side below this are refused: there is no room for an object-sized edit."""
HARD_AREA = 1e-3
"""A change this small a share of a photo (0.1%) is as hard to find as it gets (`datagen.difficulty`): photos are
busier than drawn charts and scenes."""
MAX_PIXELS = 80_000_000
"""Images whose header claims more pixels are refused before decoding (decompression bombs; 80 MP is
above any consumer camera and already ~240 MB as RGB)."""
MAX_FILE_BYTES = 256 * 2**20
BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited onto white, as viewers show them."""

# File signatures: leading bytes -> Pillow format name. WebP is RIFF....WEBP, checked separately.
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_HEAD_BYTES = 64
# EXIF orientations 5..8 turn the image by 90 degrees, so the displayed width is the stored height.
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageFile:
    """A file that passed the header checks.

    Attributes:
        path: where to read it.
        format: Pillow's format name, from the file's signature (not its suffix).
        width: displayed width in pixels, i.e. after the EXIF orientation is applied.
        height: displayed height in pixels.
        name: how errors name it: relative to its source's root, never an absolute path of the machine
            (errors end up in a published `report.jsonl`).
    """

    path: Path
    format: str
    width: int
    height: int
    name: str = ""


def list_image_files(root: Path) -> tuple[list[tuple[str, Path]], list[InputError]]:
    """Files under `root` with an image suffix, as (relative posix path, path) in sorted relative-path order.

    Folders are walked without following symlinks, so a linked folder is not listed twice or escaped
    into; a linked folder pointing outside `root` is reported. Files without an image suffix are ignored.
    """
    found: list[tuple[str, Path]] = []
    skipped: list[InputError] = []
    real_root = root.resolve()

    def unlistable(error: OSError) -> None:
        name = relative_name(Path(str(error.filename)), root)
        skipped.append(InputError(name, f"cannot list folder: {error.strerror or 'unreadable'}"))

    for folder, folders, files in os.walk(root, onerror=unlistable, followlinks=False):
        for name in folders:
            linked = Path(folder) / name
            if linked.is_symlink() and not _inside(linked.resolve(), real_root):
                skipped.append(
                    InputError(relative_name(linked, root), "folder symlink points outside the source folder")
                )
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() in SUFFIXES:
                found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda item: item[0])
    skipped.sort(key=lambda error: error.source)
    return found, skipped


def probe_image(path: Path, *, root: Path | None = None, name: str | None = None) -> ImageFile:
    """Check a file from its first bytes and header alone; no pixel is decoded.

    Args:
        path: the file.
        root: the source folder; a symlink resolving outside it is refused.
        name: how errors name the file; default its path relative to `root` (or as given without one).

    Raises:
        InputError: a symlink out of `root` or dangling, an empty, oversized or unreadable file, a file
            that is not an image of a supported format, an image below `MIN_SIDE` or above `MAX_PIXELS`.
    """
    source = name or (relative_name(path, root) if root is not None else str(path))
    if path.is_symlink():
        target = path.resolve()
        if root is not None and not _inside(target, root.resolve()):
            raise InputError(source, "symlink points outside the source folder")
        if not target.exists():
            raise InputError(source, "broken symlink")
    try:
        size = path.stat().st_size
        if size == 0:
            raise InputError(source, "empty file (0 bytes)")
        if size > MAX_FILE_BYTES:
            raise InputError(source, f"file is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB")
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as error:
        raise InputError(source, f"cannot read file: {error.strerror or _message(error, path)}") from error
    image_format = sniff_format(head, source)
    width, height = _header_size(path, image_format, source)
    if min(width, height) < MIN_SIDE:
        raise InputError(source, f"image is {width}x{height} pixels; the shorter side must be at least {MIN_SIDE}")
    return ImageFile(path=path, format=image_format, width=width, height=height, name=source)


def sniff_format(head: bytes, source: str) -> str:
    """The image format a file's first bytes announce.

    Raises:
        InputError: the bytes are no supported image signature; text (an HTML error page saved as
            `.jpg`, say) is named as such.
    """
    for signature, image_format in _SIGNATURES:
        if head.startswith(signature):
            return image_format
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    text = _as_text(head)
    if text is not None:
        raise InputError(source, f"not an image but a text file (it starts with {text!r})")
    raise InputError(source, f"not a JPEG, PNG, WebP, BMP or TIFF image (file signature {head[:8].hex(' ')})")


def decode_image(file: ImageFile, *, max_side: int | None = None) -> np.ndarray:
    """The image's pixels as `[H, W, 3]` uint8 RGB, EXIF orientation applied, long side at most `max_side`.

    JPEGs are decoded at a reduced scale when that still leaves at least `max_side` pixels (libjpeg's
    DCT scaling), which makes a 12 MP photo several times cheaper; the final size is reached by area
    averaging. Conversions: 16-bit and float images are scaled to 8 bits, CMYK/palette/grayscale/YCbCr
    to RGB, transparency composited onto `BACKGROUND`.

    Raises:
        InputError: the file is gone, unreadable, truncated or corrupt.
    """
    source = file.name or file.path.name
    width, height = (file.width, file.height) if max_side is None else target_size(file.width, file.height, max_side)
    try:
        with Image.open(file.path, formats=[file.format]) as image:
            if image.format == "JPEG" and width < file.width:
                # draft() keeps at least the requested size; stored orientation may be transposed.
                image.draft(image.mode, (width, height) if image.size == (file.width, file.height) else (height, width))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            pixels = to_rgb(image)
    except OSError as error:
        raise InputError(
            source, f"cannot decode {file.format} image (truncated or corrupt): {_message(error, file.path)}"
        ) from error
    except (SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InputError(source, f"cannot decode {file.format} image: {_message(error, file.path)}") from error
    if pixels.shape[:2] == (file.width, file.height) != (file.height, file.width):
        # An orientation the header did not reveal (a PNG's late EXIF); the pixels are the truth.
        width, height = height, width
    return shrink(pixels, width, height)


def to_rgb(image: Image.Image) -> np.ndarray:
    """`[H, W, 3]` uint8 RGB from any Pillow mode, keeping the tonal range of high-bit-depth images."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image).astype(np.float64)
        # 16-bit files span 0..65535; a 32-bit "I" image from a 16-bit PNG does too.
        gray = np.clip(values / 257.0, 0, 255)
        return np.repeat(np.rint(gray).astype(np.uint8)[:, :, None], 3, axis=2)
    if image.mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        low, high = float(values.min()), float(values.max())
        span = 1.0 if low >= 0 and high <= 1 else max(high - low, 1e-12)
        gray = np.clip((values - (0.0 if span == 1.0 else low)) / span, 0, 1) * 255
        return np.repeat(np.rint(gray).astype(np.uint8)[:, :, None], 3, axis=2)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        image = background
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def resize_long_side(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """`pixels` shrunk (aspect kept) so the longer side is at most `max_side`; never enlarged."""
    height, width = pixels.shape[:2]
    return shrink(pixels, *target_size(width, height, max_side))


def shrink(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """`pixels` resized down to `width` x `height` without aliasing, fast.

    Area averaging at an arbitrary ratio costs ~5x a bilinear pass in OpenCV, while averaging by a whole
    factor has a fast path; so: average by the largest whole factor that stays above the target (cropping
    at most factor-1 edge pixels to make it exact), then bilinear for the remaining ratio, which is
    below 2 and so does not alias.
    """
    in_height, in_width = pixels.shape[:2]
    if (in_width, in_height) == (width, height):
        return pixels
    factor = min(in_width // width, in_height // height)
    if factor >= 2:
        cropped = pixels[: in_height - in_height % factor, : in_width - in_width % factor]
        pixels = cv2.resize(
            cropped, (cropped.shape[1] // factor, cropped.shape[0] // factor), interpolation=cv2.INTER_AREA
        )
    if pixels.shape[:2] == (height, width):
        return pixels
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LINEAR)


def target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) after fitting the longer side into `max_side`, each side at least 1 pixel."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _header_size(path: Path, image_format: str, source: str) -> tuple[int, int]:
    """Displayed (width, height) from the header, refusing decompression bombs before any decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=[image_format]) as image:
                width, height = image.size
                orientation = _orientation(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(
            source, f"refused before decoding as a possible decompression bomb: {_message(error, path)}"
        ) from error
    except UnidentifiedImageError as error:
        raise InputError(source, f"starts like a {image_format} file but its header is unreadable") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(source, f"unreadable {image_format} header: {_message(error, path)}") from error
    if width * height > MAX_PIXELS:
        raise InputError(
            source,
            f"header claims {width}x{height} pixels ({width * height / 1e6:.0f} MP); refused before decoding as a "
            f"possible decompression bomb, the limit is {MAX_PIXELS / 1e6:.0f} MP",
        )
    return (height, width) if orientation in _TRANSPOSED_ORIENTATIONS else (width, height)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 = as stored) known from the header alone.

    A PNG's EXIF after its pixel data would need a full decode to find, so only EXIF seen before it counts.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    return int(image.getexif().get(_EXIF_ORIENTATION, 1))


def _as_text(head: bytes) -> str | None:
    """The first bytes as a short string when they look like text (UTF-8, mostly printable), else None."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The cut may fall inside a multi-byte character; a few bytes less must then decode.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    printable = sum(character.isprintable() or character in "\r\n\t" for character in text)
    if not text or printable < 0.95 * len(text):
        return None
    return text.strip()[:40]


def _message(error: BaseException, path: Path) -> str:
    """`error`'s text with the file's path (which libraries quote in full) cut down to its name."""
    return str(error).replace(str(path.absolute()), path.name).replace(str(path), path.name)


def relative_name(path: Path, root: Path) -> str:
    """`path` relative to `root` as a POSIX string; its bare name when it lies elsewhere."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
