"""Reading replies: the last `\\boxed{...}` of a completion, as a clue or a vote.

The release parsed the first box, so a model that boxed a draft before its answer was scored on the draft;
here the last complete box counts, and a reply whose last box is unclosed (e.g. cut off by the length limit)
is a format failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOX_OPEN = re.compile(r"\\boxed\s*\{")
PLACEHOLDER_CLUE = "(no clue given)"
"""The public clue recorded for a reply without a usable box."""
_NA = re.compile(r"n\s*/?\s*a|not\s+sure|unsure|none", re.IGNORECASE)
_SEAT = re.compile(r"(?:player|seat)?\s*#?\s*(\d+)", re.IGNORECASE)
_TEXT_OPEN = re.compile(r"\\text(?:bf)?\s*\{")


@dataclass(frozen=True)
class Clue:
    """A parsed clue turn."""

    reasoning: str
    """The reply before its last box (the whole reply when invalid): private to the speaker."""
    clue: str
    """The content of the last box, or `PLACEHOLDER_CLUE` when invalid."""
    valid: bool
    """Whether the reply ended in a complete, non-empty box."""


@dataclass(frozen=True)
class Vote:
    """A parsed vote."""

    seat: int | None
    """1-based seat voted for; None for N/A or an invalid vote."""
    na: bool
    """The voter answered N/A ("not sure")."""
    valid: bool
    """The vote is a seat in range or N/A; anything else is a format failure."""


def _last_box_span(text: str) -> tuple[int, int, int] | None:
    """(start of `\\boxed`, start of content, end of content) of the last box, or None if absent or unclosed."""
    opens = list(BOX_OPEN.finditer(text))
    if not opens:
        return None
    last = opens[-1]
    close = _closing_brace(text, last.end())
    return None if close is None else (last.start(), last.end(), close)


def _closing_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing a `{` that ends just before `start`, or None if it never closes."""
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` in `text`, nested braces kept; None if absent or unclosed."""
    span = _last_box_span(text)
    return None if span is None else text[span[1] : span[2]]


def parse_clue(text: str) -> Clue:
    """A clue reply: private reasoning, then the public clue in the last box."""
    span = _last_box_span(text)
    if span is None:
        return Clue(reasoning=text.strip(), clue=PLACEHOLDER_CLUE, valid=False)
    clue = " ".join(_unwrap(text[span[1] : span[2]]).split())
    if not clue:
        return Clue(reasoning=text.strip(), clue=PLACEHOLDER_CLUE, valid=False)
    return Clue(reasoning=text[: span[0]].strip(), clue=clue, valid=True)


def parse_vote(text: str, num_players: int) -> Vote:
    """A vote reply: `\\boxed{k}` for seat k in 1..num_players, or `\\boxed{N/A}`; anything else is invalid.

    Forms models commonly use are read too: `Player 3`, `seat 3`, `#3`, a trailing full stop, `\\text{...}`
    around the answer; `NA`, `n/a`, `not sure`, `unsure` and `none` are N/A. A seat out of range is invalid.
    """
    content = last_boxed(text)
    if content is None:
        return Vote(seat=None, na=False, valid=False)
    content = _unwrap(content).strip().rstrip(".").strip()
    if _NA.fullmatch(content):
        return Vote(seat=None, na=True, valid=True)
    match = _SEAT.fullmatch(content)
    if match is None:
        return Vote(seat=None, na=False, valid=False)
    seat = int(match.group(1))
    if not 1 <= seat <= num_players:
        return Vote(seat=None, na=False, valid=False)
    return Vote(seat=seat, na=False, valid=True)


def _unwrap(content: str) -> str:
    """`\\text{...}` around a whole answer is formatting, not content."""
    content = content.strip()
    match = _TEXT_OPEN.match(content)
    if match is None or _closing_brace(content, match.end()) != len(content) - 1:
        return content
    return content[match.end() : -1]
