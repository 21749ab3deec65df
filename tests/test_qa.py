"""`vzero qa` on a merged dataset of all three domains: every kind in every domain, and every answer checked here
against the pair's own `edits`, `meta`, boxes and mask, by rules written out in this file."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import pairless_dataset
from PIL import Image
from typer.testing import CliRunner

from chart_edit.style import color_name
from cli import app
from datagen.errors import DatasetError
from datagen.features import QA_FEATURES
from datagen.loading import load_pairs, load_questions
from datagen.qa import KINDS, from_to_choices, make_questions, pair_facts, pair_rng
from training.questions import chosen_choice, exact_match, question_messages

pytest_plugins = ["three_domains"]
pytestmark = pytest.mark.render
runner = CliRunner()
GRID = (("upper left", "top", "upper right"), ("left", "centre", "right"), ("lower left", "bottom", "lower right"))


@pytest.fixture(scope="module")
def questions(three_domains, tmp_path_factory):
    out = tmp_path_factory.mktemp("qa") / "what-changed"
    result = runner.invoke(app, ["qa", str(three_domains), "--out", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    return out


def box_of(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"-?\d+", text))


def cell(box, width, height) -> str:
    """The 3 x 3 grid cell holding the centre of a box."""
    column = min(2, int(3 * (box[0] + box[2]) / 2 / width))
    row = min(2, int(3 * (box[1] + box[3]) / 2 / height))
    return GRID[row][column]


def cell_changed(mask, name) -> bool:
    height, width = mask.shape
    row, column = next((r, c) for r, names in enumerate(GRID) for c, n in enumerate(names) if n == name)
    return bool(
        mask[row * height // 3 : (row + 1) * height // 3, column * width // 3 : (column + 1) * width // 3].any()
    )


def clevr_phrase(obj) -> str:
    return f"the {obj['size']} {obj['color']} {obj['material']} {obj['shape']}"


def check_which_target(question, pair, mask) -> None:
    meta, edits = json.loads(pair["meta"]), pair["edits"]
    edit = edits[question["edit_index"]]
    others = [choice for choice in question["choices"] if choice != question["answer"]]
    if pair["domain"] == "clevr":
        object_id = int(edit["target"].split()[1])
        scene = meta["spy" if edit["op"] == "add" else "civilian"]
        assert question["answer"] == clevr_phrase(next(o for o in scene["objects"] if o["id"] == object_id))
        unchanged = [o for o in meta["civilian"]["objects"] if o in meta["spy"]["objects"]]  # same id and attributes
        assert set(others) <= {clevr_phrase(o) for o in unchanged}
    elif pair["domain"] == "chart":
        assert question["answer"].strip("'") in re.findall(r"'([^']*)'", edit["target"])
        named = {name for e in edits for field in e.values() for name in re.findall(r"'([^']*)'", field)}
        civilian, spy = meta["civilian"]["table"], meta["spy"]["table"]
        for other in others:
            name = other.strip("'")
            assert name not in named
            if name in civilian["categories"]:
                i, j = civilian["categories"].index(name), spy["categories"].index(name)
                assert [row[i] for row in civilian["values"]] == [row[j] for row in spy["values"]]
            else:
                i, j = civilian["series_names"].index(name), spy["series_names"].index(name)
                assert civilian["values"][i] == spy["values"][j]
    else:
        width, height = mask.shape[1], mask.shape[0]
        assert question["answer"] == "at the " + cell(box_of(edit["target"]), width, height)
        assert cell_changed(mask, question["answer"].removeprefix("at the "))
        assert not any(cell_changed(mask, other.removeprefix("at the ")) for other in others)


def check_before_after(question, pair) -> None:
    edit = pair["edits"][question["edit_index"]]
    before, after = edit["before"], edit["after"]
    if pair["domain"] == "chart" and edit["op"] == "recolor":
        before, after = color_name(before), color_name(after)
    if pair["domain"] == "realworld" and edit["op"] == "move":
        before, after = before.removeprefix("at "), after.removeprefix("at ")
    assert question["answer"] == f"from {before} to {after}"
    assert f"from {after} to {before}" in question["choices"], "the reverse is always offered"


def check_grounding(question, pair, mask) -> None:
    assert box_of(question["answer"]) in {tuple(box) for box in pair["diff_boxes"]}
    x0, y0, x1, y1 = box_of(question["answer"])
    assert mask[y0:y1, x0:x1].any()
    for other in question["choices"]:
        a0, b0, a1, b1 = box_of(other)
        assert (a1 - a0, b1 - b0) == (x1 - x0, y1 - y0)
        assert other == question["answer"] or not mask[b0:b1, a0:a1].any(), "a distractor box holds no change"


def test_every_kind_in_every_domain_and_every_answer_checks_against_the_ground_truth(questions, three_domains):
    table = load_questions(questions)
    assert table.features == QA_FEATURES
    pairs = {pair["id"]: pair for pair in load_pairs(three_domains)}
    kinds = {(row["domain"], row["kind"]) for row in table}
    assert kinds == {(domain, kind) for domain in ("chart", "clevr", "realworld") for kind in KINDS}
    assert len({row["id"] for row in table}) == len(table)
    for question in table:
        pair = pairs[question["pair_id"]]
        mask = np.asarray(pair["diff_mask"]) > 0
        assert question["answer"] in question["choices"] and len(set(question["choices"])) == len(question["choices"])
        assert len(question["choices"]) >= 2 and question["domain"] == pair["domain"]
        if question["kind"] == "which_image":
            edited = question["choices"].index(question["answer"])
            shown = [np.asarray(image.convert("RGB")) for image in question["images"]]
            assert np.array_equal(shown[edited], np.asarray(pair["spy"].convert("RGB")))
            assert np.array_equal(shown[1 - edited], np.asarray(pair["civilian"].convert("RGB")))
            assert pair["description"] in question["question"]
        else:
            assert np.array_equal(np.asarray(question["images"][0].convert("RGB")), np.asarray(pair["civilian"]))
            assert np.array_equal(np.asarray(question["images"][1].convert("RGB")), np.asarray(pair["spy"]))
        if question["kind"] == "which_target":
            check_which_target(question, pair, mask)
        elif question["kind"] == "before_after":
            check_before_after(question, pair)
        elif question["kind"] == "grounding":
            check_grounding(question, pair, mask)
    by_domain = load_questions(questions, config="clevr")
    assert set(by_domain["domain"]) == {"clevr"} and len(by_domain) == sum(row["domain"] == "clevr" for row in table)
    card = (questions / "README.md").read_text()
    assert "config_name: clevr" in card and "path: data/clevr/train-*.parquet" in card
    assert "vzero qa all --out what-changed --seed 1" in card and str(three_domains.parent) not in card
    with pytest.raises(DatasetError, match="not a question dataset: missing column"):
        load_questions(three_domains)


def test_the_same_seed_gives_the_same_questions_and_an_unknown_domain_gets_the_generic_kinds(three_domains):
    pairs = load_pairs(three_domains)
    record = dict(pairs[0])
    facts = pair_facts(record)
    first = make_questions(facts, pair_rng(4, facts.pair_id), None)
    assert [q.kind for q in first] == ["which_image", "grounding"], (
        "no domain questions without the domain's vocabulary"
    )
    assert first == make_questions(facts, pair_rng(4, facts.pair_id), None)
    assert first != make_questions(facts, pair_rng(5, facts.pair_id), None)


def test_before_after_choices_hold_the_truth_the_reverse_and_vocabulary_words():
    rng = np.random.default_rng(0)
    choices = from_to_choices("red", "blue", ["red", "blue", "green", "gray", "cyan"], rng)
    assert len(choices) == 4 and {"from red to blue", "from blue to red"} <= set(choices)
    assert all(choice.startswith("from ") for choice in choices)
    assert set(from_to_choices("small", "large", ["large", "small"], rng)) == {
        "from small to large",
        "from large to small",
    }
    with pytest.raises(ValueError, match="to itself"):
        from_to_choices("red", "red", ["red", "blue"], rng)


def test_a_reply_is_read_by_letter_or_text_in_its_last_box():
    choices = ("from red to blue", "from blue to red", "image 2")
    assert chosen_choice("first \\boxed{A} then \\boxed{B}", choices) == "from blue to red"
    assert chosen_choice("\\boxed{(C)}", choices) == "image 2"
    assert chosen_choice("\\boxed{ From  Red to Blue. }", choices) == "from red to blue"
    assert chosen_choice("\\boxed{D}", choices) is None and chosen_choice("no box", choices) is None
    assert exact_match("\\boxed{B}", choices, "from blue to red") == 1.0
    assert exact_match("\\boxed{A}", choices, "from blue to red") == 0.0
    messages = question_messages("Which?", choices, [Image.new("RGB", (4, 4))] * 2)
    content = messages[0]["content"]
    assert [part["type"] for part in content] == ["image", "image", "text"] and "C. image 2" in content[2]["text"]


def test_qa_refuses_bad_input_before_any_work(tmp_path, three_domains):
    pairless = pairless_dataset(tmp_path / "pairless")
    result = runner.invoke(app, ["qa", str(pairless), "--out", str(tmp_path / "q1")])
    assert result.exit_code == 1 and "not a pair dataset" in " ".join(result.output.split())
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["qa", str(three_domains), "--out", str(busy)])
    assert result.exit_code == 1 and "exists and is not an empty folder" in result.output
    assert not (tmp_path / "q1").exists() and [p.name for p in busy.iterdir()] == ["keep.txt"]
