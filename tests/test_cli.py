"""The `vzero` commands as a user runs them: a tiny chart run, preview, info and bad options."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_chart_run_writes_a_complete_dataset_folder_with_card_and_preview(tmp_path):
    out = tmp_path / "charts"
    command = ["chart", "--out", str(out), "--num", "5", "--size", "256x192", "--workers", "1",
               "--kinds", "bar,line", "--kinds", "pie", "--shard-size", "3", "--item-timeout", "120"]  # fmt: skip
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "preview.png" in result.output
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["counts"]["written"] + manifest["counts"]["skipped"] == 5
    assert manifest["fingerprint"]["config"]["kinds"] == ["bar", "line", "pie"]
    assert "vzero chart --out" in manifest["command"] and "--kinds bar,line,pie" in manifest["command"]
    assert "--edit-kinds" not in manifest["command"] and "''" not in manifest["command"]
    assert "--workers" not in manifest["command"] and "--item-timeout" not in manifest["command"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "path: data/train-*.parquet" in card and "arXiv" in card
    with Image.open(out / "preview.png") as sheet:
        assert sheet.width == 3 * 320 + 2 * 6

    again = runner.invoke(app, command)
    assert again.exit_code == 0 and "0 / 2" in again.output


def test_preview_and_info_describe_a_dataset(chart_dataset, tmp_path):
    sheet_path = tmp_path / "sheet.png"
    result = runner.invoke(app, ["preview", str(chart_dataset), "-o", str(sheet_path), "--n", "3"])
    assert result.exit_code == 0, result.output
    with Image.open(sheet_path) as sheet:
        assert sheet.height > 3 * 192 * 320 / 256

    info = runner.invoke(app, ["info", str(chart_dataset)])
    assert info.exit_code == 0, info.output
    assert "12 pairs of 12 planned" in info.output
    assert "256x192" in info.output and "chart" in info.output and "difficulty" in info.output


@pytest.mark.parametrize(
    ("arguments", "exit_code", "message"),
    [
        (["--num", "0"], 1, "--num"),
        (["--num", "-3"], 1, "--num"),
        (["--num", "2", "--kinds", "bar,sunburst"], 1, "sunburst"),
        (["--num", "2", "--edit-kinds", "explode"], 1, "explode"),
        (["--num", "2", "--size", "640by480"], 2, "640x480"),
        (["--num", "2", "--size", "10x10"], 1, "size"),
        (["--num", "2", "--changes", "0"], 1, "changes"),
        (["--num", "2", "--shard", "3/2"], 1, "--shard"),
        (["--num", "2", "--item-timeout", "0"], 1, "--item-timeout"),
    ],
)
def test_bad_chart_options_fail_before_any_work_with_a_clear_message(tmp_path, arguments, exit_code, message):
    out = tmp_path / "never"
    result = runner.invoke(app, ["chart", "--out", str(out), *arguments])
    assert result.exit_code == exit_code
    assert message in result.output
    assert not (out / "data").exists() or not any((out / "data").iterdir())


def test_unwritable_output_and_missing_dataset_are_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["chart", "--out", str(blocker / "sub"), "--num", "2", "--size", "256x192"])
    assert result.exit_code == 1 and "cannot write" in result.output

    missing = runner.invoke(app, ["info", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 1 and "not a folder" in missing.output
    empty = tmp_path / "empty"
    empty.mkdir()
    no_shards = runner.invoke(app, ["preview", str(empty)])
    assert no_shards.exit_code == 1 and "no data/*.parquet" in no_shards.output


def test_user_tables_are_charted_and_bad_files_reported_not_fatal(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    rows = "\n".join(f"{year},{100 + 7 * i},{80 + (i * 13) % 17}" for i, year in enumerate(range(2010, 2022)))
    (tables / "sales.csv").write_text("Year,North,South\n" + rows + "\n")
    (tables / "empty.csv").write_text("")
    (tables / "latin1.csv").write_bytes("Région,Valeur\nÎle,3\nCôte,4\n".encode("latin-1"))
    (tables / "words.csv").write_text("name,city\nann,rome\nbob,oslo\n")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "chart",
            "--out",
            str(out),
            "--num",
            "4",
            "--size",
            "256x192",
            "--workers",
            "1",
            "--tables",
            str(tables),
            "--kinds",
            "bar,line,grouped_bar",
        ],
    )
    assert result.exit_code == 0, result.output
    report = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    skipped = {
        event["source"].rsplit("/", 1)[-1]: event["reason"] for event in report if event["event"] == "input_skipped"
    }
    assert set(skipped) == {"empty.csv", "latin1.csv", "words.csv"}
    assert "UTF-8" in skipped["latin1.csv"] and "numeric" in skipped["words.csv"]
    metas = [
        json.loads(m) for m in pq.read_table(out / "data" / "train-00000-of-00001.parquet").column("meta").to_pylist()
    ]
    assert metas and all(meta["civilian"]["table"]["source"].endswith("sales.csv") for meta in metas)

    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    (only_bad / "empty.csv").write_text("")
    failed = runner.invoke(app, ["chart", "--out", str(tmp_path / "never"), "--num", "2", "--tables", str(only_bad)])
    assert failed.exit_code == 1 and "no usable table" in failed.output and "empty.csv" in failed.output


def test_resuming_after_a_user_table_changed_is_refused(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    rows = "\n".join(f"{2000 + i},{50 + 9 * i}" for i in range(10))
    (tables / "sales.csv").write_text("Year,Sales\n" + rows + "\n")
    command = ["chart", "--out", str(tmp_path / "out"), "--num", "2", "--size", "256x192", "--workers", "1",
               "--tables", str(tables), "--kinds", "bar"]  # fmt: skip
    assert runner.invoke(app, command).exit_code == 0
    assert runner.invoke(app, command).exit_code == 0
    (tables / "sales.csv").write_text("Year,Sales\n" + rows.replace(",50", ",51") + "\n")
    changed = runner.invoke(app, command)
    assert changed.exit_code == 1 and "inputs" in changed.output
