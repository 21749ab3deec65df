"""Chart "what changed?" questions: which category or series changed, and what a colour, marker, line style, value or
word was and became.

Targets are read from the chart's own edit records (`'Sales' at '2019'`, `slice 'Rent'`, `'North' line`, see
`perturb.py`); distractors are categories or series of the civilian chart that no edit names and whose data and
style are the same in both charts (`meta` holds both specs), so exactly one choice changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from chart_edit.spec import number_text
from chart_edit.style import LINESTYLES, MARKERS, PALETTES, color_name
from datagen.qa import (
    ORIGINAL_AND_EDITED,
    DomainQuestions,
    PairFacts,
    Question,
    from_to,
    from_to_choices,
    multiple_choice,
)

QUOTED = re.compile(r"'([^']*)'")
CATEGORY_TARGETS = {
    "change_value": re.compile(r"^'.+' at '(.+)'$"),
    "edit_tick_label": re.compile(r"^category label '(.+)'$"),
    "drop_category": re.compile(r"^(?:category|slice) '(.+)'$"),
    "recolor": re.compile(r"^slice '(.+)'$"),
}
"""Edits of one category, and where their target names it."""
SERIES_TARGETS = {
    "recolor": re.compile(r"^'(.+)' (?:bars|line|area|points|box|cells)$"),
    "change_marker": re.compile(r"^'(.+)' (?:line|points)$"),
    "change_linestyle": re.compile(r"^series '(.+)'$"),
}
"""Edits of one series, and where their target names it."""
COLOUR_NAMES = tuple(sorted({color_name(color) for palette in PALETTES.values() for color in palette}))
TEXT_EDITS = {"edit_title": "a word of the title", "edit_axis_label": "a word of the {target}"}
WORD = re.compile(r"[^\W\d_]{3,}")


def _named(facts: PairFacts) -> set[str]:
    """Every quoted name in any edit of the pair: categories and series some edit touches."""
    return {name for edit in facts.edits for field in edit.values() for name in QUOTED.findall(field)}


def _tables(facts: PairFacts) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    return facts.meta["civilian"]["table"], facts.meta["spy"]["table"]


def _same_category(civilian: Mapping[str, Any], spy: Mapping[str, Any], label: str) -> bool:
    """Whether `label` is in both tables with the same value in every series."""
    if label not in spy["categories"] or civilian["series_names"] != spy["series_names"]:
        return False
    here, there = civilian["categories"].index(label), spy["categories"].index(label)
    return all(a[here] == b[there] for a, b in zip(civilian["values"], spy["values"], strict=True))


def _same_series(facts: PairFacts, name: str) -> bool:
    """Whether series `name` has the same data, colour, marker and line style in both charts."""
    civilian, spy = facts.meta["civilian"], facts.meta["spy"]
    if name not in spy["table"]["series_names"]:
        return False
    here, there = civilian["table"]["series_names"].index(name), spy["table"]["series_names"].index(name)
    if civilian["table"]["values"][here] != spy["table"]["values"][there]:
        return False
    styles = civilian["style"], spy["style"]
    return all(
        len(styles[0][key]) > here and len(styles[1][key]) > there and styles[0][key][here] == styles[1][key][there]
        for key in ("colors", "markers", "linestyles")
    )


def which_target(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """Which of these categories (or series) of image 1 changed: one an edit names, among untouched ones."""
    civilian, spy = _tables(facts)
    named = _named(facts)
    for index in [int(i) for i in rng.permutation(len(facts.edits))]:
        edit = facts.edits[index]
        for targets, names, still, noun in (
            (CATEGORY_TARGETS, civilian["categories"], lambda n: _same_category(civilian, spy, n), "categories"),
            (SERIES_TARGETS, civilian["series_names"], lambda n: _same_series(facts, n), "series"),
        ):
            match = targets[edit["op"]].match(edit["target"]) if edit["op"] in targets else None
            if match is None or match.group(1) not in names:
                continue
            distractors = [name for name in names if name not in named and still(name)]
            choices = multiple_choice(f"'{match.group(1)}'", [f"'{name}'" for name in distractors], rng)
            if choices is None:
                continue
            return Question(
                kind="which_target",
                question=f"{ORIGINAL_AND_EDITED} Which of these {noun} of the chart changed in image 2?",
                choices=choices,
                answer=f"'{match.group(1)}'",
                edit_index=index,
            )
    return None


def _value_words(facts: PairFacts) -> list[str]:
    """The civilian chart's values written as its edits write them (its decimals), for numeric distractors."""
    decimals = facts.meta["civilian"]["frame"]["decimals"]
    return [number_text(value, decimals) for row in facts.meta["civilian"]["table"]["values"] for value in row]


def _text_words(facts: PairFacts) -> list[str]:
    """Words of the civilian chart's title, axis labels and names, for word distractors."""
    spec = facts.meta["civilian"]
    texts = [spec["title"], spec["value_label"], spec["category_label"], *spec["table"]["series_names"]]
    return sorted({word for text in texts for word in WORD.findall(text or "")})


def _change(facts: PairFacts, edit: Mapping[str, str]) -> tuple[str, str, str, list[str]] | None:
    """(what changed, before, after, vocabulary) of an edit this module can ask about; None otherwise."""
    op, target = edit["op"], edit["target"]
    if op == "recolor":
        return f"the colour of the {target}", color_name(edit["before"]), color_name(edit["after"]), list(COLOUR_NAMES)
    if op == "change_marker":
        return f"the point markers of the {target}", edit["before"], edit["after"], list(MARKERS)
    if op == "change_linestyle":
        return f"the line style of the {target}", edit["before"], edit["after"], list(LINESTYLES)
    if op == "change_value" and CATEGORY_TARGETS[op].match(target):
        return f"the value of {target}", edit["before"], edit["after"], _value_words(facts)
    if op in TEXT_EDITS:
        return TEXT_EDITS[op].format(target=target), edit["before"], edit["after"], _text_words(facts)
    if op == "edit_tick_label":
        return "a category label", edit["before"], edit["after"], list(facts.meta["civilian"]["table"]["categories"])
    return None


def before_after(facts: PairFacts, rng: np.random.Generator) -> Question | None:
    """What a colour, marker, line style, value or word was in image 1 and is in image 2."""
    for index in [int(i) for i in rng.permutation(len(facts.edits))]:
        change = _change(facts, facts.edits[index])
        if change is None or change[1] == change[2]:
            continue
        what, before, after, vocabulary = change
        return Question(
            kind="before_after",
            question=f"{ORIGINAL_AND_EDITED} {what[:1].upper() + what[1:]} changed. What was it in image 1, and what "
            "is it in image 2?",
            choices=from_to_choices(before, after, vocabulary, rng),
            answer=from_to(before, after),
            edit_index=index,
        )
    return None


QUESTIONS = DomainQuestions(which_target=which_target, before_after=before_after)
"""The chart domain's entry in the `vision_zero.questions` entry-point group."""
