"""`vzero merge` (domains as configs, unique ids) and `vzero export --format vision-zero` on real chart datasets."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import SMALL, make_chart_dataset
from typer.testing import CliRunner

from chart_edit.domain import DOMAIN, ChartConfig
from cli import app
from datagen.errors import ConfigError, DatasetError, ResumeMismatchError
from datagen.export import changed_objects
from datagen.hub import publish
from datagen.loading import load_pairs
from datagen.merge import merge
from datagen.runner import RunOptions, run
from datagen.stats import compute_stats
from datagen.validate import validate_dataset

pytest_plugins = ["hub_server"]  # the `hub` fixture: a running stand-in Hub

runner = CliRunner()


@pytest.fixture(scope="module")
def sources(chart_dataset, tmp_path_factory) -> list[Path]:
    """Three runs: the session's charts (seed 3), more charts (seed 4), and a user's own domain `plots` (seed 3)."""
    root = tmp_path_factory.mktemp("sources")
    more_charts = make_chart_dataset(root / "charts-s4", num=4, seed=4, shard_size=4)
    plots = root / "plots"
    run(replace(DOMAIN, name="plots"), ChartConfig(**SMALL), RunOptions(out=plots, num=4, seed=3, shard_size=4))
    return [chart_dataset, more_charts, plots]


@pytest.fixture(scope="module")
def merged(sources, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "mixed-pairs"
    result = runner.invoke(app, ["merge", *map(str, sources), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def card_metadata(folder: Path) -> dict:
    return yaml.safe_load((folder / "README.md").read_text().split("---")[1])


def test_merge_files_each_domain_under_its_folder_with_unique_ids(merged, sources):
    shards = sorted(path.relative_to(merged).as_posix() for path in (merged / "data").rglob("*.parquet"))
    assert shards == [
        "data/chart/train-00000-of-00003.parquet",
        "data/chart/train-00001-of-00003.parquet",
        "data/chart/train-00002-of-00003.parquet",
        "data/plots/train-00000-of-00001.parquet",
    ]
    ids = [i for path in (merged / "data").rglob("*.parquet") for i in pq.read_table(path).column("id").to_pylist()]
    assert len(ids) == len(set(ids)) == 20
    assert {"chart-s3-00000000", "chart-s4-00000000", "plots-s3-00000000"} <= set(ids)
    for path in (merged / "data").rglob("*.parquet"):
        assert set(pq.read_table(path, columns=["domain"]).column("domain").to_pylist()) == {path.parent.name}


def test_the_card_declares_a_config_per_domain_plus_all_and_each_loads(merged):
    metadata = card_metadata(merged)
    configs = {config["config_name"]: config for config in metadata["configs"]}
    assert set(configs) == {"all", "chart", "plots"} and configs["all"]["default"] is True
    sizes = {info["config_name"]: info["splits"][0]["num_examples"] for info in metadata["dataset_info"]}
    assert sizes == {"all": 20, "chart": 16, "plots": 4}
    for name, size in sizes.items():
        loaded = datasets.load_dataset(str(merged), name, split="train")
        assert len(loaded) == size
        assert name == "all" or set(loaded["domain"]) == {name}
    assert len(load_pairs(merged)) == 20  # training's call, unchanged, loads every domain
    assert set(load_pairs(merged, config="plots")["domain"]) == {"plots"}
    with pytest.raises(DatasetError, match="no config 'clevr'.*'all', 'chart', 'plots'"):
        load_pairs(merged, config="clevr")


def test_the_merged_manifest_passes_validation_info_and_refuses_a_resumed_run(merged, sources):
    validate_dataset(merged)
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["kind"] == "merged" and manifest["command"].startswith("vzero merge ")
    assert [source["name"] for source in manifest["sources"]] == [source.name for source in sources]
    stats = compute_stats(merged)
    assert stats.records == 20 and dict(stats.domains) == {"chart": 16, "plots": 4}
    assert stats.planned == 20
    info = runner.invoke(app, ["info", str(merged)])
    assert info.exit_code == 0 and "20 pairs" in info.output and "plots" in info.output
    card = (merged / "README.md").read_text()
    assert "| domain | edit | count |" in card and "| plots | " in card
    assert "# mixed-pairs" in card and manifest["command"] in card
    with pytest.raises(ResumeMismatchError):
        run(DOMAIN, ChartConfig(**SMALL), RunOptions(out=merged, num=4, seed=3))


def test_runs_with_the_same_seed_are_refused_and_nothing_is_written(chart_dataset, tmp_path):
    twin = Path(shutil.copytree(chart_dataset, tmp_path / "twin"))
    with pytest.raises(DatasetError, match="12 pair id.*chart-s3-00000000.*same --seed"):
        merge([chart_dataset, twin], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.merging-*"))
    refused = runner.invoke(app, ["merge", str(chart_dataset), "--out", str(tmp_path / "solo")])
    assert refused.exit_code == 1 and "at least two" in refused.output


def test_a_merged_dataset_published_over_a_run_replaces_its_shards(hub, merged, chart_dataset, tmp_path):
    repo = "vzero-org/pairs"
    publish(Path(shutil.copytree(chart_dataset, tmp_path / "run")), repo)
    result = publish(Path(shutil.copytree(merged, tmp_path / "mixed")), repo)
    assert result.deleted == ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    stored = hub.stored_folder(repo)
    assert len(datasets.load_dataset(str(stored), "plots", split="train")) == 4
    assert len(datasets.load_dataset(str(stored), "all", split="train")) == 20
    assert f'load_dataset("{repo}", "chart", split="train")' in (stored / "README.md").read_text()
    assert hub.token not in (stored / "README.md").read_text()


def test_export_writes_the_release_layout_for_every_pair(merged, tmp_path):
    out = tmp_path / "vision-zero"
    result = runner.invoke(app, ["export", str(merged), "--format", "vision-zero", str(out)])
    assert result.exit_code == 0, result.output
    rows = [row for path in sorted((merged / "data").rglob("*.parquet")) for row in pq.read_table(path).to_pylist()]
    expected = {name for row in rows for name in (f"{row['id']}_original.png", f"{row['id']}_modified.png")}
    expected |= {f"{row['id']}.json" for row in rows}
    assert {path.name for path in out.iterdir()} == expected and len(expected) == 60
    for row in rows:
        assert (out / f"{row['id']}_original.png").read_bytes() == row["civilian"]["bytes"]
        assert (out / f"{row['id']}_modified.png").read_bytes() == row["spy"]["bytes"]
        log = json.loads((out / f"{row['id']}.json").read_text())
        assert log["original_image"] == f"{row['id']}_original.png"
        assert log["changes"] == row["edits"] and log["changed_regions"] == row["diff_boxes"]
        assert log["meta"] == json.loads(row["meta"]) and log["num_changes"] == len(row["edits"])
    unknown = runner.invoke(app, ["export", str(merged), "--format", "coco", str(tmp_path / "x")])
    assert unknown.exit_code == 1 and "unknown export format 'coco'" in unknown.output


def test_changed_objects_are_read_from_the_structured_meta_not_the_wording():
    edits = [
        {"op": "recolor", "target": "object 3", "before": "red", "after": "blue"},
        {"op": "swap", "target": "objects 1 and 4", "before": "", "after": ""},
    ]
    meta = {"changed_objects": [3, 1, 4], "changes": edits}
    assert changed_objects(meta) == [3, 1, 4]
    # Wording that names objects is a domain's own business: without the structured key there are none.
    assert changed_objects({"edits": edits}) == []


def test_merge_refuses_an_output_folder_that_holds_something(sources, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty folder"):
        merge(sources[:2], tmp_path / "taken")
