"""A domain of one's own: the example package under `examples/` installed (not copied into this repository) runs
through `vzero generate`, keeps the contract, merges and trains; two packages claiming one name is an error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from datagen.errors import ConfigError
from datagen.errors import GenerationError as GenerationErrorType
from datagen.quality import QualityGate
from datagen.registry import Domain, available_domains, get_domain, register_domain
from datagen.testing import ContractError, check_domain
from training.config import GameConfig
from training.game import make_game

pytest_plugins = ["training_fixtures", "three_domains"]
EXAMPLE = Path(__file__).parents[1] / "examples" / "vzero-shapes"
VZERO = str(Path(sys.executable).parent / "vzero")
runner = CliRunner()


@pytest.fixture(scope="module")
def shapes_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed with pip into a folder of its own, as a user's `pip install` would.

    `pip install --target` builds and installs the real package (its `pyproject.toml`, its entry point) in about a
    second, without a virtualenv; it builds in the source tree, so it builds a copy, never `examples/` itself.
    """
    root = tmp_path_factory.mktemp("shapes")
    shutil.copytree(EXAMPLE, root / "source", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*install, "--target", str(root / "site"), str(root / "source")], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return root / "site"


def vzero(site: Path, *arguments: str) -> subprocess.CompletedProcess:
    """The installed `vzero` command, in a process that sees the example package where pip put it."""
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    environment = {**os.environ, "PYTHONPATH": path, "COLUMNS": "300"}  # help text on one line each
    return subprocess.run([VZERO, *arguments], capture_output=True, text=True, env=environment, timeout=300)


@pytest.fixture(scope="module")
def shapes_dataset(shapes_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shapes-run") / "shapes"
    made = vzero(shapes_site, "generate", "shapes", "-o", str(out), "-n", "6", "--seed", "2", "--workers", "2",
                 "--shard-size", "3", "--set", "size=64", "--set", "shapes=4")  # fmt: skip
    assert made.returncode == 0, made.stderr + made.stdout
    return out


def test_an_installed_domain_package_runs_through_vzero_generate(shapes_site, shapes_dataset):
    listed = vzero(shapes_site, "domains", "shapes")
    assert listed.returncode == 0, listed.stderr
    # Options come from the config dataclass, their help from the fields' docstrings.
    assert "size" in listed.stdout and "Width and height of the square images" in listed.stdout
    manifest = json.loads((shapes_dataset / "manifest.json").read_text())
    assert manifest["complete"] and manifest["counts"]["written"] == 6
    assert manifest["fingerprint"]["domain"] == "shapes" and manifest["fingerprint"]["config"]["size"] == 64
    assert (
        manifest["command"].startswith("vzero generate shapes ")
        and "--set size=64 --set shapes=4" in (manifest["command"])
    )
    with Image.open(shapes_dataset / "preview.png") as sheet:
        assert sheet.width == 3 * 320 + 2 * 6

    unknown = vzero(shapes_site, "generate", "shapes", "-o", str(shapes_dataset.parent / "x"), "-n", "2",
                    "--set", "colour=red")  # fmt: skip
    assert unknown.returncode == 1 and "no option colour" in unknown.stderr and "edit_kinds" in unknown.stderr
    typed = vzero(shapes_site, "generate", "shapes", "-o", str(shapes_dataset.parent / "x"), "-n", "2",
                  "--set", "size=big")  # fmt: skip
    assert typed.returncode == 1 and "option size must be int" in typed.stderr


def test_the_example_domain_keeps_the_contract_through_vzero_check_domain(shapes_site):
    checked = vzero(shapes_site, "check-domain", "shapes", "--set", "size=64", "-n", "2")
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "end to end: 2 pairs in worker processes" in checked.stdout


def test_the_example_domain_merges_and_trains(shapes_site, shapes_dataset, chart_dataset, tiny_model, tmp_path,
                                              monkeypatch):  # fmt: skip
    monkeypatch.syspath_prepend(str(shapes_site))  # this process finds the package's entry point, as vzero would
    merged = tmp_path / "all"
    result = runner.invoke(app, ["merge", str(shapes_dataset), str(chart_dataset), "-o", str(merged)])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (merged / "data").iterdir()) == ["chart", "shapes"]

    record = {"id": "shapes-1", "domain": "shapes", "civilian": Image.new("RGB", (8, 8)),
              "spy": Image.new("RGB", (8, 8)), "description": ""}  # fmt: skip
    game = make_game(record, GameConfig(), np.random.default_rng(0))
    assert game.difference_kind == get_domain("shapes").prompt_hint  # the domain's own words reach the prompts

    run = tmp_path / "run"
    trained = runner.invoke(app, ["train", "--data", str(merged), "--model", str(tiny_model), "-o", str(run),
                                  "--recipe", "tiny-cpu", "--max-steps", "1", "--seed", "3",
                                  "--set", "rollout.games_per_step=2", "--set", "rollout.num_samples=2"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in metrics] == [1]
    assert json.loads((run / "run.json").read_text())["recipe"]["seed"] == 3


def write_distribution(site: Path, name: str, entry_points: str) -> None:
    """What an installed distribution is to `importlib.metadata`: a `.dist-info` folder with its entry points."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_two_packages_claiming_one_domain_name_is_an_error_naming_both(tmp_path, monkeypatch):
    write_distribution(tmp_path, "other-charts", "[vision_zero.domains]\nchart = other_charts.domain:DOMAIN\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        available_domains()
    assert "vision-zero (chart_edit.domain:DOMAIN)" in str(caught.value)
    assert "other-charts (other_charts.domain:DOMAIN)" in str(caught.value)
    listed = runner.invoke(app, ["domains"])
    assert listed.exit_code == 1 and "other-charts" in listed.output


def test_registering_a_taken_name_from_another_module_is_an_error_naming_both():
    chart = get_domain("chart")
    impostor = Domain("chart", chart.config_type, make_failing_generator, chart.quality)
    with pytest.raises(ConfigError, match=r"chart_edit\.domain and (tests\.)?test_domain_packages"):
        register_domain(impostor)
    assert get_domain("chart") is chart
    assert register_domain(chart) is chart  # the same module registering again (a re-import) is fine


class FailingGenerator:
    """A generator with a bug: every item raises a TypeError two frames deep in its own code."""

    skipped_inputs = ()
    input_digest = ""

    def __call__(self, index: int, seed: int):
        return self.layout(index)

    def layout(self, index: int):
        return json.loads("{" * index)  # raises deep inside the json module, two frames below the generator


def make_failing_generator(config) -> FailingGenerator:
    return FailingGenerator()


QUALITY_OFF = QualityGate()


def test_the_contract_kit_names_what_a_broken_domain_breaks(tmp_path):
    chart = get_domain("chart")
    broken = Domain("broken", chart.config_type, make_failing_generator, chart.quality)
    with pytest.raises(ContractError, match="end-to-end run failed.*JSONDecodeError.*in layout"):
        check_domain(broken, chart.config_type(width=128, height=96), num=1, out=tmp_path / "run")
    strict = Domain("strict", chart.config_type, chart.make_generator, chart.quality.__class__(max_area_fraction=1e-6))
    with pytest.raises(ContractError, match="end-to-end run failed.*QualityRejected"):
        check_domain(strict, chart.config_type(width=128, height=96), num=1, out=tmp_path / "strict")


def report_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]


def test_a_buggy_generator_is_reported_with_its_frame_and_in_debug_mode_its_whole_traceback(tmp_path, monkeypatch):
    from datagen.errors import GenerationError
    from datagen.runner import RunOptions, run

    chart = get_domain("chart")
    broken = Domain("broken", chart.config_type, make_failing_generator, chart.quality)
    with pytest.raises(GenerationError) as caught:
        run(broken, chart.config_type(), RunOptions(out=tmp_path / "plain", num=2, shard_size=2))
    assert "JSONDecodeError" in str(caught.value) and "test_domain_packages.py" in str(caught.value)
    assert "in layout" in str(caught.value)  # the generator's own frame, not json's where it was raised
    events = report_events(tmp_path / "plain")
    assert {event["where"].split(":")[0].rsplit("/", 1)[-1] for event in events} == {"test_domain_packages.py"}
    assert not any("traceback" in event for event in events)

    monkeypatch.setenv("VZERO_DEBUG", "1")
    with pytest.raises(GenerationError) as caught:
        run(broken, chart.config_type(), RunOptions(out=tmp_path / "debug", num=2, shard_size=2))
    events = report_events(tmp_path / "debug")
    assert all(event["traceback"].startswith("Traceback (most recent call last):") for event in events)
    assert all("in layout" in event["traceback"] and "json/decoder.py" in event["traceback"] for event in events)
    assert str(Path(__file__).parent) not in (tmp_path / "debug" / "report.jsonl").read_text()  # no machine paths
    assert "Traceback" in str(caught.value)


def test_vzero_generate_debug_prints_each_failure_traceback(tmp_path):
    register_domain(Domain("broken", get_domain("chart").config_type, make_failing_generator, QUALITY_OFF))
    result = runner.invoke(app, ["generate", "broken", "-o", str(tmp_path / "out"), "-n", "1", "--workers", "1",
                                 "--debug"])  # fmt: skip
    assert isinstance(result.exception, GenerationErrorType)  # --debug keeps the traceback instead of one line
    assert result.output.count("Traceback (most recent call last)") == 4  # each of the item's 4 attempts
    quiet = runner.invoke(app, ["generate", "broken", "-o", str(tmp_path / "quiet"), "-n", "1", "--workers", "1"])
    assert quiet.exit_code == 1 and "Traceback" not in quiet.output and "in layout" in quiet.output


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("chart", {"width": 128, "height": 96}),
        ("realworld", {"max_side": 128, "max_images": 2, "changes": 1}),
    ],
)
def test_the_built_in_domains_keep_the_contract(name, settings, tmp_path):
    domain = get_domain(name)
    report = check_domain(domain, domain.config_type(**settings), num=2, out=tmp_path / "run")
    assert report.run_records == 2 and len(report.checks) == 5


@pytest.mark.render
def test_the_clevr_domain_keeps_the_contract():
    # In a process of its own: Blender, once imported here, would be inherited by later tests' render workers.
    checked = subprocess.run([VZERO, "check-domain", "clevr", "-n", "2", "--set", "width=96", "--set", "height=64",
                              "--set", "samples=2"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert checked.returncode == 0, checked.stderr + checked.stdout
    assert "clevr: end to end: 2 pairs" in checked.stdout


def test_export_reads_the_changed_objects_from_each_domains_meta(three_domains, tmp_path):
    from datagen.export import export_dataset
    from datagen.reading import iter_rows

    export_dataset(three_domains, tmp_path / "vz")
    for row in iter_rows(three_domains, ["id", "domain", "meta"]):
        log = json.loads((tmp_path / "vz" / f"{row['id']}.json").read_text())
        changes = json.loads(row["meta"]).get("changes", [])
        touched = [i for change in changes for i in (change["object_id"], change["other_id"]) if i is not None]
        expected = list(dict.fromkeys(touched)) if row["domain"] == "clevr" else []
        assert log["changed_objects"] == expected and (row["domain"] != "clevr" or expected)


class NondeterministicGenerator:
    """A generator that draws from the process's global randomness instead of its seed: a classic domain bug."""

    skipped_inputs = ()
    input_digest = ""

    def __init__(self, config) -> None:
        self.chart = get_domain("chart").make_generator(config)

    def __call__(self, index: int, seed: int):
        return self.chart(index, int(np.random.default_rng().integers(2**32)))


def test_the_contract_kit_catches_a_generator_that_ignores_its_seed(tmp_path):
    chart = get_domain("chart")
    drifting = Domain("drifting", chart.config_type, NondeterministicGenerator, chart.quality)
    with pytest.raises(ContractError, match="different bytes when made again"):
        check_domain(drifting, chart.config_type(width=128, height=96), num=1, out=tmp_path / "run")
