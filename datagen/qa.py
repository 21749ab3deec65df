"""Verifiable "what changed?" questions from a pair's ground truth (`edits`, `meta`, the mask), never from a model.

Four kinds, each multiple choice with exactly one true choice, so that exact match is a verifiable reward:
- `which_image`: which of two images (the pair in a random order) is the edited one, given the description;
- `which_target`: which object, series, label or region changed;
- `before_after`: what the changed attribute was before and after, with distractors from the domain's vocabulary;
- `grounding`: which box holds a change (the true box among equally sized boxes with no changed pixel).
The first and last need only the pair schema and are made here for any domain. The other two need to know what a
domain's targets are and which words it uses, so each domain supplies them as a `DomainQuestions` through the
`vision_zero.questions` entry-point group (a user's own domain plugs in the same way); `datagen` imports no domain.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import numpy as np
from PIL import Image

KINDS = ("which_image", "which_target", "before_after", "grounding")
ENTRY_POINT_GROUP = "vision_zero.questions"
MAX_CHOICES = 4
BOX_TRIES = 200
"""Random placements tried per distractor box."""
ORIGINAL_AND_EDITED = "Image 1 is the original and image 2 the edited version."


@dataclass(frozen=True)
class PairFacts:
    """What questions about one pair are made from: its ground truth, no pixels but the mask."""

    pair_id: str
    domain: str
    edits: tuple[Mapping[str, str], ...]
    """The record's `edits`: `{op, target, before, after}` each."""
    meta: Mapping[str, Any]
    """The record's `meta`, parsed."""
    description: str
    diff_boxes: tuple[tuple[int, int, int, int], ...]
    diff_mask: np.ndarray
    """`[H, W]` bool: where the images differ by construction."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the images."""
        return self.diff_mask.shape[1], self.diff_mask.shape[0]


@dataclass(frozen=True)
class Question:
    """One question about a pair, before it becomes a row of `QA_FEATURES`."""

    kind: str
    question: str
    choices: tuple[str, ...]
    answer: str
    edit_index: int = -1
    """The entry of `edits` the question is about; -1 when it is about the pair as a whole."""
    images: tuple[str, ...] = ("civilian", "spy")
    """The pair's images shown with it, in the order the question calls them image 1, image 2."""


Maker = Callable[[PairFacts, np.random.Generator], Question | None]


@dataclass(frozen=True)
class DomainQuestions:
    """A domain's own kinds; each returns None for a pair it cannot ask about unambiguously."""

    which_target: Maker
    before_after: Maker


def pair_facts(record: Mapping[str, Any]) -> PairFacts:
    """The facts of a pair record (a row of `PAIR_FEATURES`, its mask decoded or as `{"bytes": ...}`)."""
    mask = record["diff_mask"]
    if isinstance(mask, Mapping):
        mask = Image.open(io.BytesIO(mask["bytes"]))
    return PairFacts(
        pair_id=str(record["id"]),
        domain=str(record["domain"]),
        edits=tuple(record["edits"]),
        meta=json.loads(record["meta"] or "{}"),
        description=str(record["description"] or ""),
        diff_boxes=tuple(tuple(int(v) for v in box) for box in record["diff_boxes"]),
        diff_mask=np.asarray(mask.convert("L")) > 0,
    )


def pair_rng(seed: int, pair_id: str) -> np.random.Generator:
    """The generator of one pair's questions: from the run seed and the pair's id, so order does not matter."""
    return np.random.default_rng([seed, zlib.crc32(pair_id.encode())])


def domain_questions() -> dict[str, DomainQuestions]:
    """Every installed domain's question makers, by domain name (the entry point's name)."""
    return {point.name: point.load() for point in entry_points(group=ENTRY_POINT_GROUP)}


def make_questions(facts: PairFacts, rng: np.random.Generator, domain: DomainQuestions | None) -> list[Question]:
    """Every kind that can be asked about the pair, in `KINDS` order; the domain's kinds only with its makers.

    Raises:
        ValueError: a maker broke the contract (an answer outside its choices, repeated choices): a bug.
    """
    made = [which_image(facts, rng)]
    if domain is not None:
        made += [domain.which_target(facts, rng), domain.before_after(facts, rng)]
    made.append(grounding(facts, rng))
    questions = [question for question in made if question is not None]
    for question in questions:
        check_question(question, facts)
    return questions


def check_question(question: Question, facts: PairFacts) -> None:
    """Raise ValueError unless the question is well formed: its answer is exactly one of at least two choices."""
    if question.kind not in KINDS:
        raise ValueError(f"{facts.pair_id}: unknown question kind {question.kind!r}")
    if len(question.choices) < 2 or len(set(question.choices)) != len(question.choices):
        raise ValueError(f"{facts.pair_id}: {question.kind} needs two or more distinct choices: {question.choices}")
    if question.answer not in question.choices:
        raise ValueError(f"{facts.pair_id}: {question.kind} answer {question.answer!r} is not among its choices")
    if not -1 <= question.edit_index < len(facts.edits):
        raise ValueError(f"{facts.pair_id}: {question.kind} names edit {question.edit_index} of {len(facts.edits)}")


def multiple_choice(answer: str, distractors: Iterable[str], rng: np.random.Generator) -> tuple[str, ...] | None:
    """The answer and up to `MAX_CHOICES - 1` distinct distractors, shuffled; None without any distractor."""
    pool = list(dict.fromkeys(d for d in distractors if d != answer))
    if not pool:
        return None
    chosen = [pool[i] for i in rng.permutation(len(pool))[: MAX_CHOICES - 1]]
    options = [answer, *chosen]
    return tuple(options[i] for i in rng.permutation(len(options)))


def from_to(before: str, after: str) -> str:
    """The choice text of a change: 'from red to blue'."""
    return f"from {before} to {after}"


def from_to_choices(before: str, after: str, vocabulary: Sequence[str], rng: np.random.Generator) -> tuple[str, ...]:
    """Choices for "what was it before and after": the truth, the reverse, and one side swapped for another word.

    Raises:
        ValueError: `before == after` (nothing changed, so there is nothing to ask).
    """
    if before == after:
        raise ValueError(f"a change from {before!r} to itself")
    others = [word for word in vocabulary if word not in (before, after)]
    order = rng.permutation(len(others))
    distractors = [from_to(after, before)]
    for index in order:
        distractors += [from_to(before, others[index]), from_to(others[index], after)]
    # Keep the reverse and vary the rest: the reverse is the distractor a model that only saw one image falls for.
    options = [from_to(before, after), distractors[0], *distractors[1 : MAX_CHOICES - 1]]
    return tuple(options[i] for i in rng.permutation(len(options)))


def which_image(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """Which of two images, the pair in a random order, is the edited one, given the true description."""
    if not facts.description:
        return None
    spy_first = bool(rng.random() < 0.5)
    choices = ("image 1", "image 2")
    return Question(
        kind="which_image",
        question=(
            "Images 1 and 2 are the same picture, except that one of them was edited. The edit: "
            f"{facts.description} Which image is the edited one?"
        ),
        choices=choices,
        answer=choices[0] if spy_first else choices[1],
        images=("spy", "civilian") if spy_first else ("civilian", "spy"),
    )


def box_text(box: Sequence[int]) -> str:
    """'[x0, y0, x1, y1]'."""
    return "[" + ", ".join(str(int(v)) for v in box) + "]"


def grounding(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """Which box holds a change: one of `diff_boxes` among boxes of its size that hold no changed pixel."""
    boxes = [box for box in facts.diff_boxes if facts.diff_mask[box[1] : box[3], box[0] : box[2]].any()]
    if not boxes:
        return None
    x0, y0, x1, y1 = boxes[int(rng.integers(len(boxes)))]
    distractors = _free_boxes(facts.diff_mask, x1 - x0, y1 - y0, MAX_CHOICES - 1, rng)
    choices = multiple_choice(box_text((x0, y0, x1, y1)), map(box_text, distractors), rng)
    if choices is None:
        return None
    width, height = facts.size
    return Question(
        kind="grounding",
        question=(
            f"{ORIGINAL_AND_EDITED} Both are {width} x {height} pixels. Which box [x0, y0, x1, y1] (pixels, x to "
            "the right, y down, end excluded) contains a change?"
        ),
        choices=choices,
        answer=box_text((x0, y0, x1, y1)),
    )


def _free_boxes(
    mask: np.ndarray, width: int, height: int, count: int, rng: np.random.Generator
) -> list[tuple[int, int, int, int]]:
    """Up to `count` disjoint `width` x `height` boxes inside the image holding no pixel of `mask`."""
    rows, columns = mask.shape
    if width > columns or height > rows:
        return []
    found: list[tuple[int, int, int, int]] = []
    for _ in range(BOX_TRIES * count):
        x0, y0 = int(rng.integers(columns - width + 1)), int(rng.integers(rows - height + 1))
        box = (x0, y0, x0 + width, y0 + height)
        if mask[y0 : box[3], x0 : box[2]].any() or any(_overlap(box, other) for other in found):
            continue
        found.append(box)
        if len(found) == count:
            break
    return found


def _overlap(a: Sequence[int], b: Sequence[int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
