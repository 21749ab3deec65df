"""`vzero train` as a user runs it on the tiny model and a small chart dataset: metrics, checkpoints, resume."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from cli import app
from training.model import load_model_and_processor

pytest_plugins = ["training_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def train(data, model, out, *extra):
    command = ["train", "--data", str(data), "--model", str(model), "--out", str(out), "--recipe", "tiny-cpu"]
    return runner.invoke(app, [*command, *extra])


@pytest.fixture(scope="module")
def three_steps(tmp_path_factory, chart_dataset, tiny_model):
    """One uninterrupted 3-step run (checkpoints at steps 2 and 3)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train") / "run"
    result = train(chart_dataset, tiny_model, out, "--max-steps", "3")
    torch.set_num_threads(previous)
    assert result.exit_code == 0, result.output
    return tiny_model, out


def read_metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_three_step_run_logs_every_step_and_writes_loadable_checkpoints(three_steps):
    model, out = three_steps
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert [m["stage"] for m in metrics] == ["decision", "clue", "decision"], "fixed:1 alternates from DECISION"
    for m in metrics:
        assert 0 <= m["game/accuracy"] <= 1 and 0 <= m["game/na_rate"] <= 1
        assert m["tokens/generated"] > 0 and m["speed/tokens_per_s"] > 0 and m["loss/kl"] >= 0
        assert {"reward/spy", "reward/civilian", "reward/vote", "optim/lr", "scheduler/ema_accuracy"} <= set(m)
    assert metrics[2]["loss/kl"] > 0, "after two updates the policy has moved away from the reference"

    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step-000002", "step-000003"]
    final = out / "checkpoints" / "step-000003"
    state = json.loads((final / "trainer_state.json").read_text())
    assert state["step"] == 3 and state["data_position"] == 3 * 2
    assert state["scheduler"]["steps"] == 3 and state["baselines"]["updates"] == 1
    loaded = load_model_and_processor(final)
    assert loaded.processor.tokenizer.eos_token == "<|im_end|>"
    start, trained = load_file(model / "model.safetensors"), load_file(final / "model.safetensors")
    assert trained.keys() == start.keys()
    assert any(not torch.equal(trained[key], start[key]) for key in start), "training changed the weights"


def test_resuming_from_step_two_equals_the_uninterrupted_run(three_steps, tmp_path, chart_dataset):
    """A run that died after step 3's metrics but before its checkpoint resumes from step 2 and redoes step 3."""
    model, full = three_steps
    out = tmp_path / "run"
    shutil.copytree(full, out)
    shutil.rmtree(out / "checkpoints" / "step-000003")
    resumed = train(chart_dataset, model, out, "--max-steps", "3", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "step-000002atstep2" in "".join(resumed.output.split()), resumed.output

    expected = load_file(full / "checkpoints" / "step-000003" / "model.safetensors")
    actual = load_file(out / "checkpoints" / "step-000003" / "model.safetensors")
    assert all(torch.equal(actual[key], expected[key]) for key in expected), "weights after resume differ"
    expected_state = json.loads((full / "checkpoints" / "step-000003" / "trainer_state.json").read_text())
    actual_state = json.loads((out / "checkpoints" / "step-000003" / "trainer_state.json").read_text())
    for key in ("step", "data_position", "scheduler", "baselines"):
        assert actual_state[key] == expected_state[key], key
    timing = ("speed/", "tokens/generated")
    for got, want in zip(read_metrics(out), read_metrics(full), strict=True):
        assert {k: v for k, v in got.items() if not k.startswith(timing)} == {
            k: v for k, v in want.items() if not k.startswith(timing)
        }


def test_a_run_folder_is_never_mixed_with_another_run(three_steps, chart_dataset):
    model, out = three_steps
    fresh = train(chart_dataset, model, out, "--max-steps", "4")
    assert fresh.exit_code == 1 and "pass --resume" in fresh.output
    changed = train(chart_dataset, model, out, "--max-steps", "4", "--resume", "--set", "loss.kl_coef=0.1")
    assert changed.exit_code == 1 and "kl_coef" in changed.output
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002", "step-000003"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_gradient_checkpointed_steps_on_a_gpu(tmp_path, chart_dataset, tiny_model):
    out = tmp_path / "run"
    result = train(chart_dataset, tiny_model, out, "--max-steps", "2", "--set", "precision=bf16",
                   "--set", "gradient_checkpointing=true")  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = read_metrics(out)
    assert len(metrics) == 2 and all(m["tokens/generated"] > 0 for m in metrics)
    assert (out / "checkpoints" / "step-000002" / "model.safetensors").is_file()


def test_a_pair_that_cannot_make_a_game_is_skipped_and_reported(tmp_path, chart_dataset, tiny_model):
    from datagen.loading import load_pairs

    pairs = load_pairs(chart_dataset).select(range(3))
    broken = pairs.map(lambda record, i: {"spy": record["spy"].resize((64, 48))} if i == 0 else {}, with_indices=True)
    broken.to_parquet(str(tmp_path / "broken" / "data" / "train-00000-of-00001.parquet"))
    out = tmp_path / "run"
    result = train(tmp_path / "broken", tiny_model, out, "--max-steps", "2", "--set", "save_every=5")
    assert result.exit_code == 0, result.output
    assert "skipped pair" in result.output and "must match" in " ".join(result.output.split())
    metrics = read_metrics(out)
    assert len(metrics) == 2 and sum(m["data/skipped"] for m in metrics) >= 1


@pytest.mark.slow
def test_two_processes_share_the_games_and_agree_on_stage_and_baselines(tmp_path, chart_dataset, tiny_model):
    """`torchrun` with 2 CPU processes (gloo): each plays one game of the step; statistics are gathered."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "run"
    vzero = Path(sys.executable).parent / "vzero"
    command = [str(Path(sys.executable).parent / "torchrun"), "--standalone", "--nproc_per_node", "2", str(vzero),
               "train", "--data", str(chart_dataset), "--model", str(tiny_model), "--out", str(out),
               "--recipe", "tiny-cpu", "--max-steps", "3"]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [1, 2, 3], "only the main process writes metrics"
    assert all(m["game/accuracy"] in (0.0, 0.5, 1.0) for m in metrics), "accuracy over both processes' games"
    state = json.loads((out / "checkpoints" / "step-000003" / "trainer_state.json").read_text())
    assert state["data_position"] == 6 and state["baselines"]["updates"] == 1
