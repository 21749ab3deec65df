"""Pairs taken from an image-editing dataset (`vzero realworld --pairs`): each usable source pair, made exact.

The civilian image is the dataset's before image. The spy is the before image with the after image
composited in where the edit is (the dataset's mask, or the computed change), feathered inside that mask
only: outside it the spy is the civilian bit for bit, however much the editing model re-encoded the rest.
Source pair `i` becomes item `i`; a pair that cannot become one (global or empty change, misaligned, faint,
undecodable) raises `UnusableItem`, so the runner reports it once and moves on.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from datagen.card import DataLicence
from datagen.difficulty import difficulty
from datagen.errors import InputError, UnusableItem
from datagen.masks import boxes_from_mask, channel_max
from datagen.quality import QualityGate
from datagen.record import Edit, Pair
from realworld_edit.blending import blend, crop, grow_box
from realworld_edit.change_mask import ChangeMask, computed_mask, given_mask, inner_alpha, misalignment
from realworld_edit.edit_pairs import EditPairSource, LoadedPair
from realworld_edit.images import HARD_AREA
from realworld_edit.licences import source_licence
from realworld_edit.sourced import SourcedGenerator
from realworld_edit.wording import at, instruction_kind, instruction_sentence, position_name

FEATHER_SHARE = 0.006
"""Inner feather radius as a share of the long side (6 px at 1024)."""
SUBTLETY = {"recolor": 0.2, "remove": 0.4, "add": 0.4, "replace": 0.3, "instructed": 0.5}
"""How hard each kind of instructed edit is to spot (0 obvious .. 1 subtle)."""
BEFORE_AFTER = {"remove": ("present", "absent"), "add": ("absent", "present")}
"""`Edit.before` / `Edit.after` of kinds with a fixed meaning; other kinds record the instruction as `after`."""


class InstructedPairGenerator(SourcedGenerator):
    """Turns source pair `index` into a record; build one per worker process."""

    def __init__(self, source: EditPairSource, quality: QualityGate) -> None:
        super().__init__(source)
        self.source: EditPairSource = source
        self.quality = quality

    @property
    def licence(self) -> DataLicence:
        return source_licence((), self.source.declared_licence)

    def __call__(self, index: int, seed: int) -> Pair:
        """The record of source pair `index` (`seed` is unused: the pair is fixed by the dataset).

        Raises:
            UnusableItem: the pair cannot be decoded, or its change is empty, global, misaligned or faint.
        """
        try:
            pair = self.source.load(index)
        except InputError as error:
            raise UnusableItem(error.source, error.reason) from error
        change = self.change(pair)
        before = pair.before
        height, width = before.shape[:2]
        feather = max(2, round(FEATHER_SHARE * max(height, width)))
        ys, xs = np.nonzero(change.mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        spy = before.copy()
        # Only around the mask's box is blended (outside it alpha is 0), with room for the feather's distances.
        area = grow_box(box, feather + 2, width, height)
        alpha = inner_alpha(crop(change.mask, area), feather)
        crop(spy, area)[:] = blend(crop(before, area), crop(pair.after, area), alpha)
        kind = instruction_kind(pair.entry.instruction)
        sentence = instruction_sentence(pair.entry.instruction)
        before_word, after_word = BEFORE_AFTER.get(kind, ("as photographed", sentence or "edited"))
        return Pair(
            civilian=before,
            spy=spy,
            diff_mask=change.mask,
            diff_boxes=boxes_from_mask(change.mask, merge_radius=feather),
            edits=[Edit(kind, f"region [{box[0]}, {box[1]}, {box[2]}, {box[3]}]", before_word, after_word)],
            description=sentence or f"Something {at(position_name(box, width, height))} was edited.",
            difficulty=difficulty(change.mask, [SUBTLETY[kind]], hard_area=HARD_AREA),
            meta=self.meta(pair, change, feather),
        )

    def change(self, pair: LoadedPair) -> ChangeMask:
        """The pair's change mask, checked to be a local, visible edit of aligned images.

        Raises:
            UnusableItem: naming the pair and what is wrong with its change.
        """
        entry = pair.entry
        change = (
            given_mask(pair.mask, pair.before, pair.after)
            if pair.mask is not None
            else computed_mask(pair.before, pair.after)
        )
        if not change.mask.any():
            what = "the mask is all zero" if change.origin == "given" else "before and after do not differ visibly"
            raise UnusableItem(entry.origin, what)
        if change.area > self.quality.max_area_fraction:
            shift = misalignment(pair.before, pair.after)
            if shift is not None:
                raise UnusableItem(entry.origin, f"after is misaligned with before by {shift} pixels (dx, dy)")
            raise UnusableItem(
                entry.origin,
                f"the change covers {change.area:.0%} of the image (a global edit such as a restyle or relighting; "
                f"the limit is {self.quality.max_area_fraction:.0%})",
            )
        delta = channel_max(cv2.absdiff(pair.before, pair.after))
        clear = int((delta[change.mask] >= self.quality.changed_threshold).sum())
        if clear < self.quality.min_changed_pixels:
            raise UnusableItem(
                entry.origin,
                f"the edit is too faint: {clear} pixels change clearly (at least {self.quality.min_changed_pixels})",
            )
        return change

    def meta(self, pair: LoadedPair, change: ChangeMask, feather: int) -> dict[str, Any]:
        """The record's ground truth: the source pair, its instruction and how its mask was found."""
        entry = pair.entry
        height, width = pair.before.shape[:2]
        return {
            "source": {
                "pair_id": entry.pair_id,
                "origin": entry.origin,
                "licence": self.licence.id,
                "credit": self.source.name,
            },
            "size": [width, height],
            "instruction": entry.instruction,
            "mask": {
                "origin": change.origin,
                "area": round(change.area, 6),
                "noise_delta_e": round(change.noise, 3),
                "thresholds_delta_e": list(change.thresholds) if change.thresholds else None,
            },
            "feather": feather,
        }
