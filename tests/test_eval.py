"""`vzero eval`'s numbers: per-game outcomes from scripted players, bootstrap intervals against the normal
approximation, paired differences against the spread of per-game differences, and bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import pairless_dataset
from scripted_players import ScriptedPlayers, boxed, fresh_games
from typer.testing import CliRunner

from cli import app
from training.config import GameConfig
from training.eval_stats import bootstrap_ratio, estimates, summarize
from training.evaluation import EvalItem, GameRow, QuestionRow, play_items
from training.recipe import load_recipe

pytest_plugins = ["training_fixtures"]
runner = CliRunner()


def test_game_rows_count_what_the_players_did():
    """Civilians vote the spy in even games and N/A in odd ones; clues are valid except in game 1."""
    recipe = load_recipe("tiny-cpu", ["rollout.games_per_step=2", "rollout.num_samples=2", "game.civilians=3"])
    games = fresh_games(4, GameConfig(civilians=3, rounds=1), seed=2)
    number = {game.pair_id: i for i, game in enumerate(games)}

    def vote(game, voter, samples):
        return [boxed(game.spy_seat if number[game.pair_id] % 2 == 0 else "N/A")] * samples

    def clue(game, seat, round_number):
        return "no box here" if number[game.pair_id] == 1 else f"Look. \\boxed{{red bar number {seat}}}"

    items = [EvalItem(game, difficulty=0.1 * i, questions=()) for i, game in enumerate(games)]
    rows = play_items(ScriptedPlayers(games, vote=vote, clue=clue), items, recipe, "scripted", seed=0)
    assert [row.pair_id for row in rows] == [game.pair_id for game in games]
    assert [row.identified for row in rows] == [1, 0, 1, 0]
    assert all(row.votes == 3 * 2 and row.valid_votes == 6 and row.clue_turns == 4 for row in rows)
    assert [row.na_votes for row in rows] == [0, 6, 0, 6]
    assert [row.valid_clues for row in rows] == [4, 0, 4, 4]
    assert [row.clue_words for row in rows] == [16, 0, 16, 16], "4 words per clue: 'red bar number k'"


def test_a_bootstrap_interval_of_a_proportion_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    hits = (rng.random(400) < 0.3).astype(float)
    (single,), difference = estimates([hits], [np.ones(400)], np.random.default_rng(2))
    p = hits.mean()
    half = 1.96 * np.sqrt(p * (1 - p) / 400)
    assert difference is None and single.value == p and single.n == 400
    assert single.low == pytest.approx(p - half, abs=0.012) and single.high == pytest.approx(p + half, abs=0.012)


def test_a_paired_difference_is_as_narrow_as_the_per_game_differences_say():
    """B equals A except on 40 of 400 games, where B is right and A wrong: +0.1, with a tight paired interval."""
    rng = np.random.default_rng(3)
    a = (rng.random(400) < 0.5).astype(float)
    b = a.copy()
    b[np.flatnonzero(a == 0)[:40]] = 1.0
    ones = np.ones(400)
    (first, second), difference = estimates([a, b], [ones, ones], np.random.default_rng(4))
    d = b - a
    half = 1.96 * d.std() / np.sqrt(400)
    assert difference.value == pytest.approx(0.1) and second.value - first.value == pytest.approx(0.1)
    assert difference.low == pytest.approx(0.1 - half, abs=0.01) and difference.high == pytest.approx(
        0.1 + half, abs=0.01
    )
    unpaired = 1.96 * np.sqrt(first.value * (1 - first.value) / 400 + second.value * (1 - second.value) / 400)
    assert difference.high - difference.low < unpaired, "pairing removes what the games share"


def test_ratio_metrics_resample_games_not_votes():
    """A ratio of sums: resampling three games whose votes are (1/1, 0/9, 9/10)."""
    num, den = np.array([1.0, 0.0, 9.0]), np.array([1.0, 9.0, 10.0])
    samples = bootstrap_ratio([num], [den], np.random.default_rng(5))[:, 0]
    assert samples.shape == (2000,)
    assert set(np.round(samples, 6)) <= {round(x, 6) for x in _all_ratios(num, den)}


def _all_ratios(num, den):
    """Every value sum(num)/sum(den) can take over multisets of 3 of the 3 games."""
    from itertools import combinations_with_replacement

    return [num[list(c)].sum() / den[list(c)].sum() for c in combinations_with_replacement(range(3), 3)]


def test_summary_groups_by_domain_and_difficulty_and_pairs_the_models():
    games, questions = [], []
    for model, hits in (("A", [1, 0, 0, 1]), ("B", [1, 1, 0, 1])):
        for i, hit in enumerate(hits):
            domain, difficulty = ("chart", 0.1) if i < 2 else ("clevr", 0.8)
            games.append(GameRow(model, f"p{i}", domain, difficulty, hit, 4, 1, 3, 3, 2, 10))
            questions.append(QuestionRow(model, f"p{i}", domain, difficulty, "grounding", "x", "x", hit))
    summary = summarize(["A", "B"], games, questions, seed=0)
    assert list(summary.metrics) == ["all", "domain=chart", "domain=clevr", "difficulty=easy", "difficulty=hard"]
    assert (
        summary.metrics["all"]["A"]["accuracy"].value == 0.5 and summary.metrics["all"]["B"]["accuracy"].value == 0.75
    )
    assert summary.metrics["domain=chart"]["B"]["accuracy"].value == 1.0
    assert summary.differences["all"]["accuracy"].value == 0.25
    assert summary.metrics["all"]["A"]["na_rate"].value == 0.25 and summary.metrics["all"]["A"]["clue_words"].value == 5
    assert summary.metrics["difficulty=hard"]["A"]["qa_accuracy"].value == 0.5
    assert summary.metrics["all"]["A"]["accuracy"].n == 4, "games are the clusters resampled"
    assert summary.metrics["domain=clevr"]["B"]["na_rate"].n == 2


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("more-games-than-pairs", "--games 13: "),
        ("no-games", "--games must be an integer >= 1"),
        ("three-models", "give one model, or two to compare; got 3"),
        ("not-pairs", "not a pair dataset"),
    ],
)
def test_eval_refuses_bad_input_before_any_model_loads(case, message, tmp_path, tiny_model, chart_dataset):
    models, data, games = [str(tiny_model)], str(chart_dataset), "4"
    if case == "more-games-than-pairs":
        games = "13"
    elif case == "no-games":
        games = "0"
    elif case == "three-models":
        models = [str(tiny_model)] * 3
    else:
        data = str(pairless_dataset(tmp_path / "other"))
    command = ["eval", *[arg for model in models for arg in ("--model", model)], "--data", data, "--games", games,
               "--recipe", "tiny-cpu", "--out", str(tmp_path / "eval")]  # fmt: skip
    result = runner.invoke(app, command)
    assert result.exit_code == 1 and message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "eval").exists()
    if case == "more-games-than-pairs":
        assert "has 12 pairs" in " ".join(result.output.split())
