"""Writers of real image files, good, odd and broken, and of COCO annotation files, for the real-photo tests."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """`[H, W, 3]` uint8: smooth gradients plus a few coloured blocks, so resizing and rotation are checkable."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=2)
    pixels = pixels.astype(np.uint8)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        pixels[y0 : y0 + height // 4, x0 : x0 + width // 4] = rng.integers(0, 256, 3)
    return pixels


def save(path: Path, pixels: np.ndarray, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path


def write_unusual_images(folder: Path) -> dict[str, Path]:
    """One valid file per unusual kind, keyed by kind."""
    base = photo(160, 120, seed=1)
    files: dict[str, Path] = {}
    gray16 = (np.linspace(0, 65535, 160 * 120).reshape(120, 160)).astype(np.uint16)
    files["png16_gray"] = folder / "odd/gray16.png"
    files["png16_gray"].parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(files["png16_gray"]), gray16)
    files["png16_rgb"] = folder / "odd/rgb16.png"
    cv2.imwrite(str(files["png16_rgb"]), base[:, :, ::-1].astype(np.uint16) * 257)
    files["cmyk_jpeg"] = folder / "odd/cmyk.jpg"
    Image.fromarray(base).convert("CMYK").save(files["cmyk_jpeg"], quality=95)
    files["palette_png"] = folder / "odd/palette.png"
    Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(files["palette_png"])
    files["palette_transparent_png"] = folder / "odd/palette_transparent.png"
    paletted = Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    paletted.save(files["palette_transparent_png"], transparency=0)
    rgba = np.dstack([base, np.full(base.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0
    files["alpha_png"] = save(folder / "odd/alpha.png", rgba)
    files["gray_jpeg"] = save(folder / "odd/gray.jpg", base[:, :, 0], quality=95)
    files["webp"] = save(folder / "odd/photo.webp", base, quality=95)
    files["bmp"] = save(folder / "odd/photo.bmp", base)
    files["tiff"] = save(folder / "odd/photo.tiff", base)
    files["exif_rotated_jpeg"] = write_exif_rotated(folder / "odd/rotated.jpg", base, orientation=6)
    files["png_named_jpg"] = save(folder / "odd/really_png.jpg", base, format="PNG")
    return files


def write_exif_rotated(path: Path, pixels: np.ndarray, *, orientation: int) -> Path:
    """A JPEG of `pixels` as stored, with an EXIF orientation tag telling viewers to rotate it."""
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[EXIF_ORIENTATION] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95, exif=exif.tobytes())
    return path


def write_bad_files(folder: Path) -> dict[str, Path]:
    """One broken file per kind that the cheap checks must refuse at open time, keyed by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "zero_bytes": folder / "empty.jpg",
        "html_as_jpg": folder / "error_page.jpg",
        "text_as_png": folder / "notes.png",
        "tiny": folder / "tiny.png",
        "bomb": folder / "bomb.png",
        "large_header": folder / "large_header.png",
        "garbage": folder / "garbage.webp",
    }
    files["zero_bytes"].write_bytes(b"")
    files["html_as_jpg"].write_text("<!DOCTYPE html><html><body>403 Forbidden</body></html>\n")
    files["text_as_png"].write_text("just some notes, saved with the wrong name\n")
    save(files["tiny"], np.zeros((1, 1, 3), np.uint8))
    files["bomb"].write_bytes(png_claiming_size(30000, 30000))
    files["large_header"].write_bytes(png_claiming_size(9000, 9000))
    files["garbage"].write_bytes(bytes(range(7, 250)) * 4)
    return files


def png_claiming_size(width: int, height: int) -> bytes:
    """A small PNG whose header (IHDR, with a correct CRC) claims `width` x `height` pixels."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # Signature (8) + IHDR length (4) + type (4); then width, height, and 5 more bytes before the CRC.
    start = 16
    data[start : start + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : start + 13])) & 0xFFFFFFFF
    data[start + 13 : start + 17] = struct.pack(">I", crc)
    return bytes(data)


def write_truncated_jpeg(path: Path) -> Path:
    """A JPEG cut off halfway through its image data: the header is intact, decoding fails."""
    buffer = io.BytesIO()
    Image.fromarray(photo(320, 240, seed=5)).save(buffer, format="JPEG", quality=95)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def encode_compressed_rle(mask: np.ndarray) -> dict:
    """COCO's compressed RLE of a bool mask (pycocotools' `rleToString` algorithm), as an annotation would hold it."""
    flat = mask.T.reshape(-1).astype(np.uint8)
    counts: list[int] = []
    current, run = 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    text = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            text.append(chr(c + 48))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": "".join(text)}


def coco_document(images: list[dict], annotations: list[dict]) -> dict:
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "box"}, {"id": 2, "name": "disc"}],
    }


def write_json(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document))
    return path
