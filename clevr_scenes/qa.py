"""CLEVR's "what changed?" questions: which object changed, and what its colour, shape, material or size was and became.

Objects are named as CLEVR names them ("the large red metal cube"), from the scene graphs in `meta`; a changed
object's attribute is asked about with the object named by its unchanged attributes and its position in image 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from clevr_scenes.vocabulary import COLORS, MATERIALS, SHAPES, SIZES
from datagen.qa import (
    ORIGINAL_AND_EDITED,
    DomainQuestions,
    PairFacts,
    Question,
    from_to,
    from_to_choices,
    multiple_choice,
)

ATTRIBUTES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "recolor": ("color", "colour", tuple(COLORS)),
    "reshape": ("shape", "shape", SHAPES),
    "rematerial": ("material", "material", MATERIALS),
    "resize": ("size", "size", tuple(SIZES)),
}
"""Per attribute edit: the scene graph's key, its English name and the values it can take."""
OBJECT_OPS = ("recolor", "reshape", "rematerial", "resize", "move", "remove", "add")
"""Edits of one object (`target` "object N"); a swap changes two."""


def phrase(obj: Mapping[str, Any]) -> str:
    """'the large red metal cube'."""
    return f"the {obj['size']} {obj['color']} {obj['material']} {obj['shape']}"


def _object_id(target: str) -> int | None:
    words = target.split()
    return int(words[1]) if len(words) == 2 and words[0] == "object" and words[1].isdigit() else None


def _objects(facts: PairFacts, scene: str) -> dict[int, Mapping[str, Any]]:
    return {obj["id"]: obj for obj in facts.meta[scene]["objects"]}


def _changed_ids(facts: PairFacts) -> set[int]:
    ids = {change.get("object_id") for change in facts.meta.get("changes", [])}
    ids |= {change.get("other_id") for change in facts.meta.get("changes", [])}
    return {i for i in ids if i is not None}


def _order(count: int, rng: np.random.Generator) -> list[int]:
    return [int(i) for i in rng.permutation(count)]


def which_target(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """Which of these objects changed (or was added): one changed object among objects no edit touched."""
    civilian, spy = _objects(facts, "civilian"), _objects(facts, "spy")
    changed = _changed_ids(facts)
    unchanged = [phrase(obj) for key, obj in civilian.items() if key not in changed]
    for index in _order(len(facts.edits), rng):
        edit = facts.edits[index]
        object_id = _object_id(edit["target"])
        if edit["op"] not in OBJECT_OPS or object_id is None:
            continue
        added = edit["op"] == "add"
        answer = phrase((spy if added else civilian)[object_id])
        if answer in unchanged:  # an untouched twin: the question would have two true choices
            continue
        choices = multiple_choice(answer, unchanged, rng)
        if choices is None:
            continue
        asked = "is in image 2 but not in image 1" if added else "of image 1 is different or missing in image 2"
        return Question(
            kind="which_target",
            question=f"{ORIGINAL_AND_EDITED} Which of these objects {asked}?",
            choices=choices,
            answer=answer,
            edit_index=index,
        )
    return None


def before_after(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """What one attribute of a changed object was in image 1 and is in image 2."""
    civilian = _objects(facts, "civilian")
    for index in _order(len(facts.edits), rng):
        edit = facts.edits[index]
        object_id = _object_id(edit["target"])
        if edit["op"] not in ATTRIBUTES or object_id not in civilian:
            continue
        _, name, values = ATTRIBUTES[edit["op"]]
        obj = civilian[object_id]
        same_object = [other for other in facts.edits if other["target"] == edit["target"]]
        changed = {ATTRIBUTES[other["op"]][0] for other in same_object if other["op"] in ATTRIBUTES}
        kept = " ".join(str(obj[attribute]) for attribute in ("size", "color", "material") if attribute not in changed)
        noun = obj["shape"] if "shape" not in changed else "object"
        x, y = (int(round(v)) for v in obj["pixel_coords"][:2])
        reference = " ".join(part for part in ("the", kept, noun) if part) + f" at about pixel ({x}, {y}) of image 1"
        return Question(
            kind="before_after",
            question=(
                f"{ORIGINAL_AND_EDITED} The {name} of {reference} changed. What was it in image 1, "
                "and what is it in image 2?"
            ),
            choices=from_to_choices(edit["before"], edit["after"], values, rng),
            answer=from_to(edit["before"], edit["after"]),
            edit_index=index,
        )
    return None


QUESTIONS = DomainQuestions(which_target=which_target, before_after=before_after)
"""CLEVR's entry in the `vision_zero.questions` entry-point group."""
