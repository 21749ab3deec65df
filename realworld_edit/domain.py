"""The real-photo domain: its config, the pair generator (photo -> regions -> edits -> composite), its registration.

With `pairs` set, the pairs come from an existing image-editing dataset instead (`instructed`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from datagen.card import DataLicence
from datagen.checks import check_choices, check_int
from datagen.difficulty import difficulty
from datagen.errors import ConfigError, QualityRejected
from datagen.masks import boxes_from_mask, channel_max, difference_mask, dilate
from datagen.quality import QualityGate
from datagen.record import Pair, png_bytes
from datagen.registry import Domain, register_domain
from datagen.seeding import item_rng
from realworld_edit.blending import Box, apply_patch, crop, fill_holes, grow_box, merged, place
from realworld_edit.edit_pairs import EditPairSource, PairColumns, open_pairs
from realworld_edit.edits import DEFAULT_EDIT_KINDS, EDIT_KINDS, EditContext, EditOutcome
from realworld_edit.images import HARD_AREA, MIN_SIDE
from realworld_edit.instructed import InstructedPairGenerator
from realworld_edit.licences import source_licence
from realworld_edit.regions import Region, annotated_regions, propose_regions
from realworld_edit.seams import seam_problem
from realworld_edit.sourced import SourcedGenerator
from realworld_edit.sources import DEFAULT_MAX_SIDE, ImageSource, SourceImage, open_source
from realworld_edit.wording import describe

MAX_CHANGES = 4
MAX_SIDE = 4096
EDIT_DRAWS = 12
"""(edit kind, region) draws per change before the item is given up (the runner then retries another seed)."""
MAX_EDIT_AREA = 0.2
"""Largest fraction of the image one edit may change."""
MIN_VISIBLE_SHARE = 0.25
"""Share of an edit's region that must change clearly (by `QUALITY.changed_threshold`) for it to count as seen."""
FEATHER_SHARE = 0.005
"""Feather radius as a share of the image's long side (5 px at 1024)."""
CACHED_PHOTOS = 16
"""Decoded photos (with their regions) a worker keeps: a source of a few photos is decoded once per worker."""
# The spy is composited from exact footprints, so nothing may differ outside the mask.
QUALITY = QualityGate(tolerance=0, mask_dilation=2, changed_threshold=24, min_changed_pixels=50, max_area_fraction=0.5)


@dataclass(frozen=True)
class RealworldConfig:
    """Options of `vzero realworld`; `asdict` of it is saved in the run manifest."""

    source: str | None = None
    """Folder of photos, or `hf:ORG/NAME` for a Hub dataset; None uses the built-in photos."""
    split: str = "train"
    """Split of a Hub dataset."""
    image_column: str = "image"
    """Image column of a Hub dataset."""
    annotations: str | None = None
    """COCO-style instances JSON whose object masks are edited instead of proposed regions."""
    edit_kinds: tuple[str, ...] = DEFAULT_EDIT_KINDS
    """Edit kinds to draw from."""
    changes: int = 2
    """Edits per pair, each on a different region (1..4)."""
    max_side: int = DEFAULT_MAX_SIDE
    """Photos are shrunk so that their long side is at most this many pixels."""
    max_images: int | None = None
    """Use only the first this many usable images (a Hub dataset: the first rows streamed; default 500 there)."""
    pairs: str | None = None
    """An image-editing dataset (`hf:ORG/NAME` or a local folder in Hub layout) whose before/after pairs become
    the pairs, instead of editing photos; `source`, `annotations`, `edit_kinds` and `changes` do not apply."""
    before_column: str = "source_img"
    """Column of the unedited image (`pairs` only); the default is MagicBrush's."""
    after_column: str = "target_img"
    """Column of the edited image (`pairs` only)."""
    instruction_column: str | None = "instruction"
    """Column of the edit instruction, which becomes the description (`pairs` only; None: the dataset has none)."""
    mask_column: str | None = None
    """Column of a mask of the edit, white where edited (`pairs` only; None: the change is computed)."""
    max_pairs: int | None = None
    """Read only the first this many rows of the pair dataset (None: all)."""


@dataclass(frozen=True)
class Photo:
    """A decoded source image and the regions that may be edited in it, best first."""

    image: SourceImage
    regions: tuple[Region, ...]
    png: bytes
    """The photo encoded once: it is the civilian image of every pair made from it."""


class RealworldPairGenerator(SourcedGenerator):
    """Makes real-photo pairs; build one per worker process, since it keeps decoded photos."""

    def __init__(self, config: RealworldConfig, source: ImageSource) -> None:
        super().__init__(source)
        self.source: ImageSource = source
        self.config = config
        self._photos: OrderedDict[int, Photo] = OrderedDict()

    @property
    def licence(self) -> DataLicence:
        """What the card declares: from the licences the source states for its images."""
        return source_licence((entry.licence for entry in self.source.entries), self.source.declared_licence)

    def __call__(self, index: int, seed: int) -> Pair:
        """The pair of `seed`: draw a photo, edit `changes` different regions, composite, measure.

        Raises:
            InputError: the drawn photo cannot be decoded.
            QualityRejected: the photo has no editable region, or no visible edit was found.
        """
        rng = item_rng(seed)
        photo = self.photo(int(rng.integers(len(self.source))))
        civilian = photo.image.pixels
        height, width = civilian.shape[:2]
        if not photo.regions:
            raise QualityRejected(f"no editable region found in {photo.image.image_id}")
        feather = max(2, round(FEATHER_SHARE * max(height, width)))
        spy = civilian.copy()
        occupied = np.zeros((height, width), bool)
        outcomes: list[EditOutcome] = []
        regions: list[Region] = []
        for _ in range(self.config.changes):
            context = EditContext(spy, occupied, rng, feather)
            outcome, region = self._draw_edit(context, photo.regions, {o.edit.op for o in outcomes})
            for patch in outcome.patches:
                apply_patch(spy, patch)
                _claim(occupied, patch.box, patch.footprint, gap=2 * feather + 2)
            for box in outcome.consulted:
                _claim(occupied, box, np.ones((box[3] - box[1], box[2] - box[0]), bool), gap=2 * feather + 2)
            outcomes.append(outcome)
            regions.append(region)
        mask = fill_holes(cv2.morphologyEx(difference_mask(civilian, spy).astype(np.uint8), cv2.MORPH_CLOSE, _CLOSE))
        return Pair(
            civilian=civilian,
            spy=spy,
            diff_mask=mask,
            diff_boxes=boxes_from_mask(mask, merge_radius=feather),
            edits=[outcome.edit for outcome in outcomes],
            description=describe([outcome.clause for outcome in outcomes]),
            difficulty=difficulty(
                mask, [EDIT_KINDS[outcome.edit.op].subtlety for outcome in outcomes], hard_area=HARD_AREA
            ),
            meta={
                "source": photo.image.meta(),
                "size": [width, height],
                "regions": [region.meta() for region in regions],
                "edits": [outcome.params for outcome in outcomes],
                "feather": feather,
            },
            civilian_png=photo.png,
        )

    def photo(self, index: int) -> Photo:
        """Photo `index` of the source with its regions, from the cache when recently used."""
        if index in self._photos:
            self._photos.move_to_end(index)
            return self._photos[index]
        image = self.source.load(index)
        height, width = image.pixels.shape[:2]
        regions = annotated_regions(image.objects, height, width)
        if len(regions) < self.config.changes:
            # Fewer annotated objects than edits per pair: proposals clear of the annotated ones make up the rest.
            taken = np.zeros((height, width), bool)
            for region in regions:
                crop(taken, region.box)[region.mask] = True
            regions += [r for r in propose_regions(image.pixels) if not crop(taken, r.box)[r.mask].any()]
        photo = Photo(image, tuple(regions), png_bytes(image.pixels))
        self._photos[index] = photo
        if len(self._photos) > CACHED_PHOTOS:
            self._photos.popitem(last=False)
        return photo

    def _draw_edit(
        self, context: EditContext, regions: Sequence[Region], used_kinds: set[str]
    ) -> tuple[EditOutcome, Region]:
        """A visible, not too large edit of a region clear of earlier edits; kinds not used yet come first."""
        kinds = [kind for kind in self.config.edit_kinds if kind not in used_kinds] or list(self.config.edit_kinds)
        free = [region for region in regions if not crop(context.occupied, region.box)[region.mask].any()]
        if not free:
            raise QualityRejected("every region of the photo overlaps an earlier edit")
        weights = np.array([region.score for region in free]) + 1e-3
        reason = ""
        for _ in range(EDIT_DRAWS):
            kind = EDIT_KINDS[str(context.rng.choice(kinds))]
            region = free[int(context.rng.choice(len(free), p=weights / weights.sum()))]
            try:
                outcome = kind.make(context, region)
            except QualityRejected as error:
                reason = str(error)
                continue
            reason = why_refused(context.image, outcome, region, context.feather)
            if not reason:
                return outcome, region
        raise QualityRejected(f"no acceptable edit in {EDIT_DRAWS} draws; last: {reason}")


_CLOSE = np.ones((5, 5), np.uint8)


def _claim(occupied: np.ndarray, box: Box, mask: np.ndarray, gap: int) -> None:
    """Mark `mask` (of `box`), grown by `gap`, as taken."""
    height, width = occupied.shape
    grown = grow_box(box, gap, width, height)
    crop(occupied, grown)[dilate(place(mask, box, grown), gap)] = True


def why_refused(image: np.ndarray, outcome: EditOutcome, region: Region, feather: int) -> str:
    """Why the edit must be drawn again (too large, too subtle to see, or seamed), or "" when it is fine."""
    change = merged(image, outcome.patches)
    area = int(change.footprint.sum()) / (image.shape[0] * image.shape[1])
    if area > MAX_EDIT_AREA:
        return f"{outcome.edit.op} would change {area:.1%} of the image (maximum {MAX_EDIT_AREA:.0%})"
    delta = channel_max(cv2.absdiff(crop(image, change.box), change.pixels))
    clear = int((delta[change.footprint] >= QUALITY.changed_threshold).sum())
    needed = max(QUALITY.min_changed_pixels, MIN_VISIBLE_SHARE * region.area)
    if clear < needed:
        return f"{outcome.edit.op} of {outcome.edit.target} changed only {clear} pixels clearly (needs {needed:.0f})"
    seam = seam_problem(image, change, feather)
    return f"{outcome.edit.op} of {outcome.edit.target}: {seam}" if seam else ""


def make_generator(config: RealworldConfig) -> RealworldPairGenerator | InstructedPairGenerator:
    """Validate `config` (before any work), open the image (or pair) source and build the generator.

    Raises:
        ConfigError: a value is out of range or unknown, or the source holds no usable image (or pair).
    """
    if config.pairs is not None:
        return InstructedPairGenerator(open_edit_pairs(config), QUALITY)
    validate(config)
    source = open_source(
        config.source,
        annotations=config.annotations,
        max_side=config.max_side,
        split=config.split,
        image_column=config.image_column,
        max_images=config.max_images,
    )
    return RealworldPairGenerator(config, source)


def open_edit_pairs(config: RealworldConfig) -> EditPairSource:
    """The pair dataset `config.pairs` names, with its columns, opened (and cached) once.

    Raises:
        ConfigError: a value is out of range (see `validate`), or see `edit_pairs.open_pairs`.
    """
    validate(config)
    columns = PairColumns(config.before_column, config.after_column, config.instruction_column, config.mask_column)
    return open_pairs(
        config.pairs, columns=columns, split=config.split, max_pairs=config.max_pairs, max_side=config.max_side
    )


def validate(config: RealworldConfig) -> None:
    """Raise `ConfigError` naming the first bad value and what is allowed."""
    if config.pairs is not None:
        given = [name for name in ("source", "annotations") if getattr(config, name) is not None]
        if given:
            raise ConfigError(f"--pairs takes its images from the pair dataset; drop {', '.join(given)}")
        if config.max_pairs is not None:
            check_int("max_pairs", config.max_pairs, 1)
    check_choices("edit_kinds", config.edit_kinds, EDIT_KINDS, what="edit kind")
    check_int("changes", config.changes, 1, MAX_CHANGES)
    check_int("max_side", config.max_side, MIN_SIDE, MAX_SIDE, unit="pixels")


DOMAIN = register_domain(
    Domain(
        name="realworld",
        config_type=RealworldConfig,
        make_generator=make_generator,
        quality=QUALITY,
        summary="real photos edited with OpenCV, or the before/after pairs of an image-editing dataset",
        prompt_hint="a few objects or regions of the photo differ: something may be changed, recoloured, added or "
        "removed",
    )
)
