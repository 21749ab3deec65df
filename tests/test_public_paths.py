"""No output file of a finished dataset names an absolute path of the machine; the card's licence follows sources."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import cv2
import pyarrow.parquet as pq
import pytest
from realworld_support import save
from typer.testing import CliRunner

from cli import app
from datagen.card import DataLicence, combined_licence
from datagen.public import PLACEHOLDER, PathScrubber, public_config, public_path
from realworld_edit.licences import source_licence
from realworld_edit.sources import open_source

runner = CliRunner()


def machine_paths(*extra: Path) -> set[str]:
    """Absolute paths that must not appear: home, the temporary folder, the working folder, and `extra`."""
    paths = {str(Path.home()), tempfile.gettempdir(), os.getcwd(), *(str(path) for path in extra)}
    return {path for candidate in paths for path in (candidate, os.path.realpath(candidate)) if path != "/"}


def leaks(folder: Path, paths: set[str]) -> list[str]:
    """Every (file, path) where a file of `folder`, or a decoded string column of one of its shards, holds a path."""
    found = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        texts = [file.read_bytes().decode("latin-1")]
        if file.suffix == ".parquet":
            table = pq.read_table(file, columns=["id", "description", "meta", "edits"])
            texts.append(json.dumps(table.to_pylist()))
        found += [f"{file.relative_to(folder)}: {path}" for path in paths for text in texts if path in text]
    return found


def test_a_finished_real_photo_dataset_names_no_absolute_path(tmp_path):
    folder = tmp_path / "photos"
    built_in = open_source(None, max_side=160)
    for index, name in ((2, "cat.png"), (3, "trips/coffee.jpg")):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), cv2.cvtColor(built_in.load(index).pixels, cv2.COLOR_RGB2BGR))
    (folder / "broken.jpg").write_text("<html>not a photo</html>")
    jpeg = (folder / "trips/coffee.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["realworld", "--out", str(out), "--num", "4", "--source", str(folder), "--max-side", "160", "--workers", "1",
         "--changes", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = (out / "report.jsonl").read_text()
    assert "broken.jpg" in report and "cut.jpg" in report, "the bad files are reported, by relative name"
    assert leaks(out, machine_paths(folder, out)) == []
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"]["config"]["source"] == PLACEHOLDER
    assert f"--source '{PLACEHOLDER}'" in manifest["command"]
    card = (out / "README.md").read_text()
    assert "license: other" in card and "not stated (user's folder)" in card


def test_a_chart_dataset_from_absolute_table_paths_names_none(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "sales.csv").write_text("year,sales\n2020,3\n2021,5\n2022,4\n2023,7\n")
    (tables / "bad.csv").write_text("no numbers here\njust,text\n")
    out = tmp_path / "charts"
    result = runner.invoke(
        app, ["chart", "--out", str(out), "--num", "2", "--tables", str(tables), "--size", "256x192", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "bad.csv" in (out / "report.jsonl").read_text()
    assert leaks(out, machine_paths(tables, out)) == []
    assert "license: cc-by-4.0" in (out / "README.md").read_text()


def test_relative_paths_are_recorded_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save(Path("photos/a.png"), open_source(None, max_side=160).load(2).pixels)
    result = runner.invoke(
        app, ["realworld", "--out", "out", "--num", "1", "--source", "photos", "--max-side", "160", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(Path("out/manifest.json").read_text())
    assert "--out out --num 1 --source photos --max-side 160" in manifest["command"]
    assert manifest["fingerprint"]["config"]["source"] == "photos"


def test_public_forms_and_scrubbing():
    assert public_path("photos/x") == "photos/x" and public_path("../x") == "../x"
    assert public_path("/home/someone/x") == PLACEHOLDER and public_path("hf:/data/x") == f"hf:{PLACEHOLDER}"
    assert public_path("hf:org/name") == "hf:org/name" and public_path("~/x") == PLACEHOLDER
    assert public_config({"a": ["/abs", 3], "b": {"c": "rel"}}) == {"a": [PLACEHOLDER, 3], "b": {"c": "rel"}}
    scrubber = PathScrubber(["/data/photos"])
    home = str(Path.home())
    text = f"InputError: /data/photos/trips/a.jpg: cannot decode; see {home}/notes and /data/photos"
    assert scrubber.scrub(text) == f"InputError: trips/a.jpg: cannot decode; see {PLACEHOLDER}/notes and {PLACEHOLDER}"


@pytest.mark.parametrize(
    ("licences", "declared", "expected"),
    [
        (["CC0-1.0", "CC0-1.0"], None, DataLicence("cc0-1.0")),
        ([], "cc-by-nc-4.0", DataLicence("cc-by-nc-4.0", "as the source dataset declares")),
        ([], "", DataLicence("other", "the source dataset declares no licence; check its terms before publishing")),
    ],
)
def test_source_licences_become_the_cards(licences, declared, expected):
    assert source_licence(licences, declared) == expected


def test_mixed_licences_are_other_with_a_note():
    builtin = source_licence((entry.licence for entry in open_source(None).entries), None)
    assert builtin.id == "other" and "3 images: CC0-1.0" in builtin.note and "Public domain" in builtin.note
    assert combined_licence([DataLicence("cc0-1.0"), DataLicence("cc0-1.0")]) == DataLicence("cc0-1.0")
    mixed = combined_licence([DataLicence("cc-by-4.0"), builtin])
    assert mixed.id == "other" and "cc-by-4.0" in mixed.note and "CC0-1.0" in mixed.note
