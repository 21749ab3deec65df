"""Real-photo "what changed?" questions: where a changed region is (the 3 x 3 grid's words), and what colour a
recoloured region was and became, or where a moved region was and went.

The region of an edit is the box its record names (`region [x0, y0, x1, y1]`); a position is a distractor only when
its cell of the grid holds no changed pixel, so exactly one choice changed.
"""

from __future__ import annotations

import re

import numpy as np

from datagen.qa import (
    ORIGINAL_AND_EDITED,
    DomainQuestions,
    PairFacts,
    Question,
    box_text,
    from_to,
    from_to_choices,
    multiple_choice,
)
from realworld_edit.wording import PALETTE, POSITIONS, at, position_name

BOX = re.compile(r"\[(\d+), (\d+), (\d+), (\d+)\]$")
PLACES = tuple(f"the {name}" for row in POSITIONS for name in row)
"""Where a moved region was and went, as choices word it ('the upper left'; edits write 'at the upper left')."""


def _box(target: str) -> tuple[int, int, int, int] | None:
    match = BOX.search(target)
    return None if match is None else tuple(int(value) for value in match.groups())


def _changed_cells(mask: np.ndarray) -> set[str]:
    """Names of the grid cells holding at least one changed pixel."""
    height, width = mask.shape
    cells = set()
    for row, names in enumerate(POSITIONS):
        for column, name in enumerate(names):
            rows = slice(row * height // 3, (row + 1) * height // 3)
            columns = slice(column * width // 3, (column + 1) * width // 3)
            if mask[rows, columns].any():
                cells.add(name)
    return cells


def which_target(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """Where in image 1 a changed region is: its cell of the 3 x 3 grid, among cells with no change at all."""
    width, height = facts.size
    changed = _changed_cells(facts.diff_mask)
    for index in [int(i) for i in rng.permutation(len(facts.edits))]:
        box = _box(facts.edits[index]["target"])
        if box is None or position_name(box, width, height) not in changed:
            continue
        answer = at(position_name(box, width, height))
        choices = multiple_choice(answer, [at(name) for row in POSITIONS for name in row if name not in changed], rng)
        if choices is None:
            continue
        return Question(
            kind="which_target",
            question=f"{ORIGINAL_AND_EDITED} Where in the picture is a region that changed?",
            choices=choices,
            answer=answer,
            edit_index=index,
        )
    return None


def before_after(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """What colour a recoloured region was and became, or where a moved region was and went."""
    for index in [int(i) for i in rng.permutation(len(facts.edits))]:
        edit = facts.edits[index]
        box = _box(edit["target"])
        if box is None or edit["op"] not in ("recolor", "move"):
            continue
        region = f"the region in box {box_text(box)} of image 1"
        before, after = edit["before"], edit["after"]
        if edit["op"] == "recolor":
            asked = f"The colour of {region} changed. What colour was it in image 1, and what colour is it in image 2?"
            vocabulary = list(PALETTE)
        else:
            asked = f"{region[:1].upper()}{region[1:]} moved. Where was it in image 1, and where is it in image 2?"
            before, after, vocabulary = before.removeprefix("at "), after.removeprefix("at "), list(PLACES)
        return Question(
            kind="before_after",
            question=f"{ORIGINAL_AND_EDITED} {asked}",
            choices=from_to_choices(before, after, vocabulary, rng),
            answer=from_to(before, after),
            edit_index=index,
        )
    return None


QUESTIONS = DomainQuestions(which_target=which_target, before_after=before_after)
"""The real-photo domain's entry in the `vision_zero.questions` entry-point group."""
