"""`vzero train` as a user runs it on the tiny model and a small chart dataset: metrics, game transcripts,
checkpoints, resume. The model's `generation_config.json` is hostile (repetition penalty, top-k/p, n-gram bans,
minimum length, temperature 0.1), and the run samples at temperature 0.7: every update must start on-policy."""

from __future__ import annotations

import html
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from cli import app
from training.model import load_model_and_processor

pytest_plugins = ["training_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


# Iterative mode with K_min = 1 and patience 1: the stage switches after every step (D, C, D), by the patience rule.
GAMES, G = 4, 3
RUN_SETTINGS = ["--set", "rollout.temperature=0.7", "--set", "scheduler.mode=iterative",
                "--set", "scheduler.min_dwell=1", "--set", "scheduler.patience=1",
                "--set", f"rollout.games_per_step={GAMES}", "--set", f"rollout.num_samples={G}"]  # fmt: skip


def train(data, model, out, *extra):
    command = ["train", "--data", str(data), "--model", str(model), "--out", str(out), "--recipe", "tiny-cpu"]
    return runner.invoke(app, [*command, *RUN_SETTINGS, *extra])


@pytest.fixture(scope="module")
def three_steps(tmp_path_factory, chart_dataset, hostile_tiny_model):
    """One uninterrupted 3-step run (checkpoints at steps 2 and 3)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train") / "run"
    result = train(chart_dataset, hostile_tiny_model, out, "--max-steps", "3")
    torch.set_num_threads(previous)
    assert result.exit_code == 0, result.output
    return hostile_tiny_model, out


def read_metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def read_games(out):
    return [json.loads(line) for line in (out / "games.jsonl").read_text().splitlines()]


def test_a_three_step_run_logs_every_step_and_writes_loadable_checkpoints(three_steps):
    model, out = three_steps
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert [m["stage"] for m in metrics] == ["decision", "clue", "decision"], "iterative mode, patience 1"
    assert all(m["scheduler/last_switch_reason"].startswith("patience: 1 steps") for m in metrics)
    for m in metrics:
        assert 0 <= m["game/accuracy"] <= 1 and 0 <= m["game/na_rate"] <= 1
        assert m["tokens/generated"] > 0 and m["speed/tokens_per_s"] > 0 and m["loss/kl"] >= 0
        assert {"reward/spy", "reward/civilian", "reward/vote", "optim/lr", "scheduler/ema_accuracy"} <= set(m)
    assert metrics[2]["loss/kl"] > 0, "after two updates the policy has moved away from the reference"

    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["step-000002", "step-000003"]
    final = out / "checkpoints" / "step-000003"
    state = json.loads((final / "trainer_state.json").read_text())
    assert state["step"] == 3 and state["data_position"] == 3 * GAMES
    assert state["scheduler"]["steps"] == 3 and state["baselines"]["updates"] == 1
    loaded = load_model_and_processor(final)
    assert loaded.processor.tokenizer.eos_token == "<|im_end|>"
    start, trained = load_file(model / "model.safetensors"), load_file(final / "model.safetensors")
    assert trained.keys() == start.keys()
    assert any(not torch.equal(trained[key], start[key]) for key in start), "training changed the weights"
    saved = json.loads((final / "generation_config.json").read_text())
    assert saved == json.loads((model / "generation_config.json").read_text()), "the model's own, verbatim"


def test_every_update_starts_on_policy_despite_a_hostile_generation_config(three_steps):
    for m in read_metrics(three_steps[1]):
        assert abs(m["loss/approx_kl"]) < 1e-6, m["loss/approx_kl"]
        assert m["loss/clip_fraction"] == 0.0


def test_the_learning_rate_follows_the_cosine_schedule_step_by_step(three_steps):
    # tiny-cpu: lr 1e-3, no warm-up, 3 steps: lr_s = 1e-3 * (1 + cos(pi * s / 3)) / 2 for s = 0, 1, 2.
    expected = [1e-3 * (1 + math.cos(math.pi * s / 3)) / 2 for s in range(3)]
    assert expected == pytest.approx([1e-3, 7.5e-4, 2.5e-4])
    assert [m["optim/lr"] for m in read_metrics(three_steps[1])] == pytest.approx(expected, rel=1e-9)


def test_games_jsonl_recomputes_by_hand_to_the_logged_rewards_and_advantages(three_steps):
    """Every number in games.jsonl from its votes and the paper's formulas, written out here."""
    _, out = three_steps
    games, metrics = read_games(out), read_metrics(out)
    assert [g["step"] for g in games] == [step for step in (1, 2, 3) for _ in range(GAMES)], "all games logged"
    keys = {"step", "stage", "pair_id", "spy", "order", "clues", "votes", "clue_rewards", "baselines_before",
            "clue_advantages", "vote_rewards", "vote_advantages"}  # fmt: skip
    baselines = {"spy": 0.0, "civilian": 0.0}
    for step in (1, 2, 3):
        step_games = [g for g in games if g["step"] == step]
        stage = metrics[step - 1]["stage"]
        rewards_by_role = {"spy": [], "civilian": []}
        for g in step_games:
            assert keys <= set(g) and g["stage"] == stage
            assert g["baselines_before"] == pytest.approx(baselines)
            players, spy = 3, g["spy"]
            assert sorted(g["order"][0]) == [1, 2, 3] and set(g["clues"][0]) == {"1", "2", "3"}
            for turn in g["clues"][0].values():
                assert turn["valid"] == (turn["clue"] != "(no clue given)") and turn["text"]
            assert set(g["votes"]) == {str(s) for s in range(1, 4) if s != spy}
            tally = dict.fromkeys(range(1, players + 1), 0.0)
            for voter, votes in g["votes"].items():
                assert len(votes) == G and int(voter) != spy
                for vote in votes:
                    if isinstance(vote, int):
                        tally[vote] += 1 / G
                # +1 for the spy, -0.5 for N/A, -1 otherwise.
                rewards = [1.0 if v == spy else -0.5 if v == "N/A" else -1.0 for v in votes]
                assert g["vote_rewards"][voter] == pytest.approx(rewards)
                if stage == "decision":
                    centred = np.asarray(rewards) - np.mean(rewards)
                    assert g["vote_advantages"][voter] == pytest.approx(centred / (np.std(rewards) + 1e-8), abs=1e-6)
                else:
                    assert g["vote_advantages"] is None
            civilians = [s for s in range(1, players + 1) if s != spy]
            v_bar = sum(tally[s] for s in civilians) / len(civilians)
            psi = tally[spy] - v_bar
            expected = {
                spy: -0.1 * psi,
                **{s: 0.1 / len(civilians) * psi - 0.1 * (tally[s] - v_bar) for s in civilians},
            }
            assert {int(k): v for k, v in g["clue_rewards"].items()} == pytest.approx(expected, abs=1e-12)
            if stage == "clue":
                for seat, reward in expected.items():
                    role = "spy" if seat == spy else "civilian"
                    assert g["clue_advantages"][str(seat)] == pytest.approx(reward - baselines[role], abs=1e-12)
            else:
                assert g["clue_advantages"] is None
            for seat, reward in expected.items():
                rewards_by_role["spy" if seat == spy else "civilian"].append(reward)
            na = [v for votes in g["votes"].values() for v in votes]
            spy_votes = tally[spy] * G
            assert g["identified"] == (spy_votes > max(tally[s] * G for s in civilians) and spy_votes > na.count("N/A"))
        assert metrics[step - 1]["game/accuracy"] == np.mean([g["identified"] for g in step_games])
        if stage == "clue":  # RAE: b = 0.95 b + 0.05 mean(role rewards), after clue steps only
            baselines = {role: 0.95 * baselines[role] + 0.05 * np.mean(r) for role, r in rewards_by_role.items()}
    all_votes = [v for g in games for votes in g["votes"].values() for v in votes]
    assert any(isinstance(v, int) for v in all_votes), "some votes name a seat, so some clue rewards are not 0"
    state = json.loads((out / "checkpoints" / "step-000003" / "trainer_state.json").read_text())
    assert state["baselines"]["spy"] == pytest.approx(baselines["spy"])
    assert state["baselines"]["civilian"] == pytest.approx(baselines["civilian"])


def test_vzero_games_renders_the_transcripts_as_a_page(three_steps, tmp_path):
    _, out = three_steps
    page_path = tmp_path / "page.html"
    result = runner.invoke(app, ["games", str(out), "--steps", "2-3", "--out", str(page_path)])
    assert result.exit_code == 0, result.output
    page = page_path.read_text()
    games = [g for g in read_games(out) if g["step"] in (2, 3)]
    assert page.count('<section class="game">') == 2 * GAMES and "Step 1 " not in page
    assert page.count("data:image/png;base64,") == 2 * 2 * GAMES, "each game shows the civilian and the spy image"
    for g in games:
        assert g["pair_id"] in page
        for turn in g["clues"][0].values():
            assert html.escape(turn["clue"]) in page
    assert re.search(r"Step 2 &mdash; clue stage", page) and "RAE baselines before this step" in page

    bad = runner.invoke(app, ["games", str(out), "--steps", "9"])
    assert bad.exit_code == 1 and "step(s) [9] are not in games.jsonl" in " ".join(bad.output.split())
    missing = runner.invoke(app, ["games", str(tmp_path)])
    assert missing.exit_code == 1 and "no games.jsonl" in missing.output
    bare = runner.invoke(
        app, ["games", str(out), "--no-images", "--data", str(tmp_path / "gone"), "-o", str(page_path)]
    )
    assert bare.exit_code == 0 and "data:image" not in page_path.read_text()


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
    assert read_games(out) == read_games(full), "step 3's games were played again, the same, and logged once"


def test_resume_without_the_run_record_is_a_clear_error(three_steps, tmp_path, chart_dataset):
    model, full = three_steps
    out = tmp_path / "run"
    shutil.copytree(full, out)
    (out / "run.json").unlink()
    result = train(chart_dataset, model, out, "--max-steps", "4", "--resume")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "has checkpoints but no run.json" in " ".join(result.output.split())


def test_log_games_limits_the_transcripts(tmp_path, chart_dataset, tiny_model):
    one = train(chart_dataset, tiny_model, tmp_path / "one", "--max-steps", "1", "--log-games", "1")
    assert one.exit_code == 0, one.output
    assert [g["step"] for g in read_games(tmp_path / "one")] == [1]
    none = train(chart_dataset, tiny_model, tmp_path / "none", "--max-steps", "1", "--log-games", "0")
    assert none.exit_code == 0 and not (tmp_path / "none" / "games.jsonl").exists()


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
