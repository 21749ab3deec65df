"""The contact sheet: civilian | spy | difference outlined, one pair per row, with its description."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from datagen.errors import DatasetError
from datagen.files import atomic_path
from datagen.layout import PREVIEW_NAME
from datagen.reading import iter_rows
from datagen.record import PNG_COMPRESS_LEVEL
from datagen.store import Store, open_store

CELL_WIDTH = 320
CAPTION_HEIGHT = 44
GAP = 6
OUTLINE = (230, 20, 60)
OUTLINE_WIDTH = 2
BACKGROUND = (250, 250, 250)


def _decode(image: dict) -> Image.Image:
    return Image.open(io.BytesIO(image["bytes"]))


def difference_panel(spy: Image.Image, mask: Image.Image, boxes: list[list[float]]) -> Image.Image:
    """The spy image dimmed outside the mask, the changed pixels tinted, each box outlined (all at panel size)."""
    pixels = np.asarray(spy, dtype=np.float32)
    changed = np.asarray(mask.convert("L")) > 0
    pixels[~changed] = pixels[~changed] * 0.45 + 255 * 0.55
    pixels[changed] = pixels[changed] * 0.5 + np.array(OUTLINE, np.float32) * 0.5
    panel = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(panel)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle(
            [
                round(x0) - OUTLINE_WIDTH,
                round(y0) - OUTLINE_WIDTH,
                round(x1) + OUTLINE_WIDTH - 1,
                round(y1) + OUTLINE_WIDTH - 1,
            ],
            outline=OUTLINE,
            width=OUTLINE_WIDTH,
        )
    return panel


def contact_sheet(dataset: Store | Path | str, n: int = 12) -> Image.Image:
    """A sheet of the first `n` pairs of `dataset_dir`.

    Images are shrunk to the panel size first and the difference panel is drawn there: a sheet of
    1024-px photos otherwise spends seconds tinting pixels that are thrown away.
    """
    columns = ["id", "civilian", "spy", "diff_mask", "diff_boxes", "description"]
    store = open_store(dataset)
    rows = list(iter_rows(store, columns, limit=n))
    if not rows:
        raise DatasetError(f"{store.location} holds no pairs to preview")
    font = ImageFont.load_default(size=13)
    strips = []
    for row in rows:
        civilian, spy, mask = (_decode(row[key]) for key in ("civilian", "spy", "diff_mask"))
        scale = CELL_WIDTH / civilian.width
        size = (CELL_WIDTH, round(civilian.height * scale))
        civilian, spy = (
            image.convert("RGB").resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0) for image in (civilian, spy)
        )
        mask = mask.convert("L").resize(size, Image.Resampling.BOX)
        boxes = [[coordinate * scale for coordinate in box] for box in row["diff_boxes"]]
        panels = [civilian, spy, difference_panel(spy, mask, boxes)]
        strip = Image.new("RGB", (3 * CELL_WIDTH + 2 * GAP, size[1] + CAPTION_HEIGHT), BACKGROUND)
        for column, panel in enumerate(panels):
            strip.paste(panel, (column * (CELL_WIDTH + GAP), 0))
        caption = textwrap.shorten(f"{row['id']}: {row['description']}", width=300, placeholder=" ...")
        lines = textwrap.wrap(caption, width=130)[:2]
        ImageDraw.Draw(strip).multiline_text((4, size[1] + 4), "\n".join(lines), fill=(20, 20, 20), font=font)
        strips.append(strip)
    sheet = Image.new(
        "RGB", (strips[0].width, sum(s.height for s in strips) + GAP * (len(strips) - 1)), (255, 255, 255)
    )
    top = 0
    for strip in strips:
        sheet.paste(strip, (0, top))
        top += strip.height + GAP
    return sheet


def write_preview(dataset: Store | Path | str, output: Path | None = None, n: int = 12) -> str:
    """Write the contact sheet (default: the dataset's `preview.png`) and return where it went."""
    sheet = contact_sheet(dataset, n)
    if output is not None:
        with atomic_path(output) as temporary:
            sheet.save(temporary, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return str(output)
    store = open_store(dataset)
    with store.committing(PREVIEW_NAME) as temporary:
        sheet.save(temporary, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return store.describe(PREVIEW_NAME)
