"""Rewording chart text and continuing label sequences: the word-level half of the text edits.

A replaced word must keep the text plausible but false ('revenue' -> 'income', 2019 -> 2047, a visible
typo), and an added category needs the label that naturally comes next (2024 after 2023, Apr after Mar).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence

import numpy as np

# Interchangeable words of chart titles and labels: replacing one keeps the text plausible but false.
_SYNONYMS = (
    ("revenue", "income", "turnover", "earnings"),
    ("sales", "orders", "returns"),
    ("annual", "monthly", "quarterly", "weekly", "daily"),
    ("average", "median", "total", "maximum", "minimum"),
    ("north", "south", "east", "west"),
    ("population", "households", "employment"),
    ("emissions", "imports", "exports", "production"),
    ("temperature", "humidity"),
    ("rainfall", "snowfall", "sunshine"),
    ("visits", "sessions", "clicks"),
    ("demand", "supply", "consumption"),
    ("budgets", "salaries", "expenses"),
    ("points", "goals", "wins"),
    ("share", "growth"),
    ("time", "delay", "distance"),
)
_STOPWORDS = frozenset({"with", "from", "that", "this", "over", "into", "than", "about", "after", "before"})
_TOKEN = re.compile(r"[^\W\d_]{3,}|\d+")


def next_label(labels: Sequence[str]) -> str | None:
    """The label that continues `labels`, for a category added at the end.

    2024 after 2023, Apr after Mar, 2022 Q1 after 2021 Q4, Week 6 after Week 5, Brand C after Brand B;
    "Other" for labels without an order (countries, products); None when no new unique label can be made
    (e.g. age bands "40–59", "60+", which have no obvious successor).
    """
    last, previous = labels[-1], labels[-2] if len(labels) > 1 else None
    candidate = _next_in_sequence(last, previous)
    if candidate is None and not any(ch.isdigit() for ch in last):
        candidate = "Other"
    return candidate if candidate is not None and candidate not in labels else None


def _next_in_sequence(last: str, previous: str | None) -> str | None:
    """The successor of `last` in a recognised sequence (months, days, hours, quarters, seasons, numbers)."""
    months = [calendar.month_abbr[m] for m in range(1, 13)], [calendar.month_name[m] for m in range(1, 13)]
    for names in months:
        if last in names:
            return names[(names.index(last) + 1) % 12]
    # A leap year, so that "Feb 29" parses; the year itself is never shown.
    for pattern, delta in (("%Y %b %d", dt.timedelta(days=1)), ("%Y %H:%M", dt.timedelta(hours=1))):
        try:
            moment = dt.datetime.strptime(f"2000 {last}", pattern) + delta
        except ValueError:
            continue
        return f"{moment:%b} {moment.day}" if "%d" in pattern else f"{moment:%H:%M}"
    quarter = re.fullmatch(r"(\d{4}) Q([1-4])", last)
    if quarter:
        year, q = int(quarter[1]), int(quarter[2])
        return f"{year + q // 4} Q{q % 4 + 1}"
    season = re.fullmatch(r"(\d{4})/(\d{2})", last)
    if season:
        year = int(season[1]) + 1
        return f"{year}/{(year + 1) % 100:02d}"
    numbered = re.fullmatch(r"(\D*)(\d+)(\D*)", last)
    before = re.fullmatch(r"(\D*)(\d+)(\D*)", previous or "")
    if numbered and before and (before[1], before[3]) == (numbered[1], numbered[3]):
        step = max(1, int(numbered[2]) - int(before[2]))
        return f"{numbered[1]}{int(numbered[2]) + step:0{len(numbered[2])}d}{numbered[3]}"
    lettered = re.fullmatch(r"(.*\s)([A-Y])", last)
    if lettered:
        return f"{lettered[1]}{chr(ord(lettered[2]) + 1)}"
    return None


def reword(text: str, rng: np.random.Generator, *, avoid: frozenset[str] = frozenset()) -> tuple[str, str, str] | None:
    """Replace one word of `text`: by a same-kind word ('revenue' -> 'income'), another number, or a typo.

    Args:
        text: the text to change.
        rng: the only source of randomness.
        avoid: results that are not allowed (e.g. the other category labels, which must stay unique).

    Returns:
        (old word, new word, new text), or None when `text` has no word that can change.
    """
    synonyms = {word: group for group in _SYNONYMS for word in group}
    options = []
    for match in _TOKEN.finditer(text):
        word = match.group()
        if word.isdigit():
            new, natural = _other_number(word, rng), True
        elif word.lower() in synonyms:
            group = [w for w in synonyms[word.lower()] if w != word.lower()]
            new, natural = _same_case(str(rng.choice(group)), word), True
        elif len(word) >= 4 and word.lower() not in _STOPWORDS:
            new, natural = _typo(word, rng), False
        else:
            continue
        changed = text[: match.start()] + new + text[match.end() :]
        if new != word and changed not in avoid:
            options.append((word, new, changed, natural))
    if not options:
        return None
    preferred = [option for option in options if option[3]] or options
    old, new, changed, _ = preferred[int(rng.integers(len(preferred)))]
    return old, new, changed


def _same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def _other_number(digits: str, rng: np.random.Generator) -> str:
    """Same width, last two digits both changed (2019 -> 2047), so that the edit is more than a pixel or two."""
    tail = [str(int(rng.choice([d for d in range(10) if str(d) != old]))) for old in digits[-2:]]
    return digits[:-2] + "".join(tail)


def _typo(word: str, rng: np.random.Generator) -> str:
    """Three letters after the first rotated ('Germany' -> 'Grmeany', 'Year' -> 'Yare'), else two swapped.

    A slip a careful reader notices; three changed glyphs stay visible in small tick labels.
    """
    rotations = [i for i in range(1, len(word) - 2) if len(set(word[i : i + 3])) == 3]
    if rotations:
        i = int(rng.choice(rotations))
        return word[:i] + word[i + 1 : i + 3] + word[i] + word[i + 3 :]
    swaps = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
    if not swaps:
        return word
    i = int(rng.choice(swaps))
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
