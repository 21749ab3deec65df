"""One name per concept across commands: `vzero generate DOMAIN` and the friendly commands make the same dataset, and
the previous release's spellings still work, hidden, with a warning."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cli import app
from tests.conftest import content_hash

runner = CliRunner()


def test_generate_and_the_friendly_command_make_the_same_dataset(tmp_path):
    friendly = runner.invoke(app, ["chart", "-o", str(tmp_path / "a"), "-n", "2", "--size", "128x96", "--workers", "1",
                                   "--kinds", "bar,line", "--seed", "4"])  # fmt: skip
    generic = runner.invoke(app, ["generate", "chart", "-o", str(tmp_path / "b"), "-n", "2", "--workers", "1",
                                  "--seed", "4", "--set", "width=128", "--set", "height=96",
                                  "--set", "kinds=bar,line"])  # fmt: skip
    assert friendly.exit_code == 0 and generic.exit_code == 0, friendly.output + generic.output
    assert content_hash(tmp_path / "a") == content_hash(tmp_path / "b")
    fingerprints = [json.loads((tmp_path / name / "manifest.json").read_text())["fingerprint"] for name in "ab"]
    assert fingerprints[0] == fingerprints[1]  # so either spelling resumes the other's run


def test_old_spellings_are_hidden_aliases_that_warn(chart_dataset, tmp_path):
    new = runner.invoke(app, ["preview", str(chart_dataset), "-o", str(tmp_path / "new.png"), "-n", "2"])
    old = runner.invoke(app, ["preview", str(chart_dataset), "--output", str(tmp_path / "old.png"), "--n", "2"])
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert (tmp_path / "new.png").read_bytes() == (tmp_path / "old.png").read_bytes()
    assert "--output is now --out" in old.output and "--n is now --num" in old.output
    both = runner.invoke(app, ["preview", str(chart_dataset), "-o", str(tmp_path / "x.png"), "--output", "y.png"])
    assert both.exit_code == 2 and "give --out only" in both.output

    exported = runner.invoke(app, ["export", str(chart_dataset), "--out", str(tmp_path / "vz")])
    positional = runner.invoke(app, ["export", str(chart_dataset), str(tmp_path / "vz-old")])
    assert exported.exit_code == 0 and positional.exit_code == 0, exported.output + positional.output
    assert sorted(p.name for p in (tmp_path / "vz").iterdir()) == sorted(
        p.name for p in (tmp_path / "vz-old").iterdir()
    )
    assert "is now --out" in positional.output
    missing = runner.invoke(app, ["export", str(chart_dataset)])
    assert missing.exit_code == 2 and "--out" in missing.output

    for command in (["pull", "org/name"], ["make-tiny-model"], ["export-model", str(tmp_path)]):
        help_text = runner.invoke(app, [*command, "--help"]).output
        assert "--out" in help_text and "-o" in help_text


def test_realworld_edits_is_now_edit_kinds(tmp_path):
    options = ["realworld", "-n", "1", "--max-side", "128", "--max-images", "1", "--workers", "1", "--changes", "1"]
    new = runner.invoke(app, [*options, "-o", str(tmp_path / "new"), "--edit-kinds", "recolor"])
    old = runner.invoke(app, [*options, "-o", str(tmp_path / "old"), "--edits", "recolor"])
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert "--edits is now --edit-kinds" in old.output
    assert content_hash(tmp_path / "new") == content_hash(tmp_path / "old")
    assert "--edit-kinds recolor" in json.loads((tmp_path / "old" / "manifest.json").read_text())["command"]
