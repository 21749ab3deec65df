"""Asking a "what changed?" question (`datagen.qa`) as a chat prompt, reading the choice from the reply, and its
exact-match reward: what `vzero eval` measures, and the reward of RLVR on a question dataset.

The choices are lettered; a reply answers with the letter or the choice's text in its last `\\boxed{...}` (the same
box rule as the game's parsing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from PIL import Image

from training.parsing import last_boxed
from training.prompts import Message

LETTERS = "ABCDEFGH"
ANSWER_FORMAT = "Think step by step, then end your answer with the letter of your choice in \\boxed{...}."
_LETTER = re.compile(r"\(?([A-H])\)?\.?")


def question_messages(question: str, choices: Sequence[str], images: Sequence[Image.Image]) -> list[Message]:
    """One user message: the images in order, the question, the lettered choices and the answer format."""
    lines = [question, *(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(choices)), ANSWER_FORMAT]
    content = [*({"type": "image", "image": image} for image in images), {"type": "text", "text": "\n".join(lines)}]
    return [{"role": "user", "content": content}]


def _plain(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(".")


def chosen_choice(reply: str, choices: Sequence[str]) -> str | None:
    """The choice a reply's last box names (its letter, or its text up to case and spacing); None if none."""
    content = last_boxed(reply)
    if content is None:
        return None
    content = content.strip()
    letter = _LETTER.fullmatch(content)
    if letter is not None and LETTERS.index(letter.group(1)) < len(choices):
        return choices[LETTERS.index(letter.group(1))]
    matches = [choice for choice in choices if _plain(choice) == _plain(content)]
    return matches[0] if matches else None


def exact_match(reply: str, choices: Sequence[str], answer: str) -> float:
    """1.0 when the reply chose `answer`, else 0.0: the verifiable reward."""
    return float(chosen_choice(reply, choices) == answer)
