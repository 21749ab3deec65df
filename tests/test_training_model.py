"""The model side of training on the tiny real Qwen2.5-VL: loading, batched sampling, log-probs, stage masking,
the sign of the update, and bad inputs failing fast."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import pairless_dataset
from training_support import load_tiny, make_games, make_sampler
from typer.testing import CliRunner

from cli import app
from training.config import GameConfig, LossConfig, RewardConfig
from training.families import QWEN_SUPPRESSED
from training.game import Role, Transcript
from training.loss import policy_loss
from training.parsing import parse_vote
from training.prompts import clue_messages, vote_messages
from training.rewards import RoleBaselines, group_advantages
from training.rollout import completion_mask, token_logprobs
from training.scheduler import Stage
from training.selfplay import play_games

pytest_plugins = ["training_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
GAME = GameConfig(civilians=2, rounds=1)


def test_tiny_model_folder_loads_like_a_hub_checkpoint(tiny_model):
    loaded = load_tiny(tiny_model)
    tokenizer = loaded.processor.tokenizer
    assert json.loads((tiny_model / "tokenizer_config.json").read_text())["processor_class"] == "Qwen2_5_VLProcessor"
    assert json.loads((tiny_model / "preprocessor_config.json").read_text())["size"]["longest_edge"] == 12845056
    assert loaded.model.config.model_type == "qwen2_5_vl"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.padding_side == "left"
    assert sum(p.numel() for p in loaded.model.parameters()) < 400_000
    suppressed = set(make_sampler(loaded).sampling.suppressed)
    vocab_rows = loaded.model.get_output_embeddings().weight.shape[0]
    assert {tokenizer.convert_tokens_to_ids(t) for t in QWEN_SUPPRESSED} <= suppressed
    assert set(range(len(tokenizer), vocab_rows)) <= suppressed and vocab_rows > len(tokenizer)
    assert tokenizer.eos_token_id not in suppressed


def test_completion_mask_keeps_the_first_eos_and_drops_what_follows():
    ids = torch.tensor([[5, 7, 9, 1, 3], [5, 9, 9, 9, 9], [1, 4, 1, 4, 4]])
    assert completion_mask(ids, [9]).tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]


def test_batched_sampling_logprobs_equal_the_training_forward(tiny_model, chart_dataset):
    torch.manual_seed(0)
    loaded = load_tiny(tiny_model)
    sampler = make_sampler(loaded, max_new_tokens=20)
    games = make_games(chart_dataset, 3, GAME)
    transcript = Transcript()
    prompts = [clue_messages(game, 1, 1, transcript) for game in games]
    prompts += [vote_messages(game, game.civilian_seats[0], transcript) for game in games]
    completions = sampler.sample(prompts)

    assert len(completions) == 6 and [len(v["image_grid_thw"]) for v in completions.vision] == [1] * 6
    assert (completions.prompt_mask[:, 0] == 0).any(), "prompts of different lengths are left-padded"
    eos = loaded.processor.tokenizer.eos_token_id
    lengths = completions.completion_lengths.tolist()
    ended = [row for row, length in enumerate(lengths) if completions.completion_ids[row, length - 1] == eos]
    assert ended, "some completions end with EOS, which stays inside the mask"
    for row in ended:
        assert (
            completions.completion_mask[row, : lengths[row]].all()
            and not completions.completion_mask[row, lengths[row] :].any()
        )

    with torch.no_grad():
        forward = token_logprobs(loaded.model, completions, sampler.sampling)
        without_types = _logprobs_without_mm_token_types(loaded.model, completions, sampler.sampling.suppressed)
    assert torch.allclose(forward, completions.old_logprobs, atol=1e-5)
    assert (forward * completions.completion_mask).abs().sum() > 0
    assert (without_types - completions.old_logprobs).abs().max() > 1e-4, "M-RoPE needs mm_token_type_ids"

    subset = completions.select([4, 1])
    assert subset.completion_ids.shape[1] == max(lengths[4], lengths[1])
    with torch.no_grad():
        again = token_logprobs(loaded.model, subset, sampler.sampling)
    assert torch.allclose(again, subset.old_logprobs, atol=1e-5)
    assert subset.texts == [completions.texts[4], completions.texts[1]]


def test_samples_sharing_one_prefill_have_the_logprobs_of_the_training_forward(tiny_model, chart_dataset):
    torch.manual_seed(4)
    loaded = load_tiny(tiny_model)
    sampler = make_sampler(loaded, max_new_tokens=20)
    games = make_games(chart_dataset, 2, GAME)
    prompts = [vote_messages(game, seat, Transcript()) for game in games for seat in game.civilian_seats]
    completions = sampler.sample(prompts, num_samples=3)

    assert len(completions) == 4 * 3 and len(completions.vision) == 12
    single = sampler.encode(prompts)
    assert torch.equal(completions.prompt_ids, single.tokens["input_ids"].repeat_interleave(3, dim=0))
    assert len(set(completions.texts)) > 4, "the samples of one prompt differ"
    with torch.no_grad():
        forward = token_logprobs(loaded.model, completions, sampler.sampling)
    assert torch.allclose(forward, completions.old_logprobs, atol=1e-5)


def _logprobs_without_mm_token_types(model, completions, suppressed):
    """The same forward as `token_logprobs` minus `mm_token_type_ids`: what the pitfall looks like."""
    input_ids = torch.cat([completions.prompt_ids, completions.completion_ids], dim=1)
    mask = torch.cat([completions.prompt_mask, completions.completion_mask], dim=1)
    logits = model(
        input_ids=input_ids,
        attention_mask=mask,
        pixel_values=torch.cat([v["pixel_values"] for v in completions.vision]),
        image_grid_thw=torch.cat([v["image_grid_thw"] for v in completions.vision]),
    ).logits[:, completions.prompt_ids.shape[1] - 1 : -1]
    logits[..., list(suppressed)] = float("-inf")
    picked = torch.log_softmax(logits, -1).gather(2, completions.completion_ids.unsqueeze(2)).squeeze(2)
    return picked * completions.completion_mask


@pytest.mark.parametrize("stage", [Stage.CLUE, Stage.DECISION])
def test_only_the_active_stage_is_returned_for_training(tiny_model, chart_dataset, stage):
    torch.manual_seed(1)
    sampler = make_sampler(load_tiny(tiny_model))
    games = make_games(chart_dataset, 3, GameConfig(civilians=2, rounds=2))
    baselines = RoleBaselines(0.5)
    trajectory = play_games(
        sampler, games, stage=stage, num_samples=2, game_config=GAME, reward_config=RewardConfig(), baselines=baselines
    )
    assert trajectory.stage is stage and trajectory.stats.games == 3
    if stage is Stage.DECISION:
        (votes, advantages), = trajectory.chunks  # fmt: skip
        assert len(votes) == 3 * 2 * 2 == len(advantages), "G = 2 samples per civilian of every game"
        assert all("time to vote" in _prompt_text(votes, row, sampler) for row in range(len(votes)))
        groups = advantages.view(-1, 2)
        assert torch.allclose(groups.sum(dim=1), torch.zeros(len(groups)), atol=1e-5)
        assert baselines.updates == 0, "play_games only reads the baselines"
    else:
        assert len(trajectory.chunks) == 2 * 3, "one chunk per turn (2 rounds x 3 players), one row per game"
        for turns, advantages in trajectory.chunks:
            assert len(turns) == 3 == len(advantages)
            assert all("your turn to give a clue" in _prompt_text(turns, row, sampler) for row in range(3))
    assert len(trajectory.seat_rewards) == len(trajectory.seat_roles) == 3 * 3
    assert trajectory.seat_roles.count(Role.SPY) == 3


def _prompt_text(completions, row, sampler):
    return sampler.processor.tokenizer.decode(completions.prompt_ids[row][completions.prompt_mask[row].bool()])


def test_clue_advantages_are_role_rewards_minus_role_baselines(tiny_model, chart_dataset):
    torch.manual_seed(2)
    sampler = make_sampler(load_tiny(tiny_model))
    games = make_games(chart_dataset, 4, GAME, seed=7)
    baselines = RoleBaselines(0.5)
    baselines.values = {Role.CIVILIAN: 0.25, Role.SPY: -0.5}
    trajectory = play_games(
        sampler,
        games,
        stage=Stage.CLUE,
        num_samples=2,
        game_config=GAME,
        reward_config=RewardConfig(),
        baselines=baselines,
    )
    turn_advantages = {}
    for turns, advantages in trajectory.chunks:
        assert len(turns) == len(games)
        for game, advantage in zip(games, advantages.tolist()):
            turn_advantages.setdefault(game.pair_id, []).append(advantage)
    for game in games:
        spy_turn = game.speaking_orders[0].index(game.spy_seat)
        shifted = np.asarray(turn_advantages[game.pair_id]) + [
            -0.5 if turn == spy_turn else 0.25 for turn in range(game.num_players)
        ]
        assert abs(shifted.sum()) < 1e-6, "clue rewards of a game are zero-sum before the baselines"
    assert baselines.updates == 0, "play_games only reads the baselines; the trainer updates them"


def test_policy_gradient_raises_the_mean_reward_of_a_chancy_answer(tiny_model, chart_dataset):
    """Reward 1 for `\\boxed{N/A}`, which the tiny model says now and then: its rate must rise."""
    torch.manual_seed(3)
    loaded = load_tiny(tiny_model)
    model, sampler = loaded.model, make_sampler(loaded, max_new_tokens=14)
    game = make_games(chart_dataset, 1, GAME)[0]
    prompt = vote_messages(game, game.civilian_seats[0], Transcript())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    config, group = LossConfig(kl_coef=0.0), 8
    rates = []
    for _ in range(24):
        model.eval()
        completions = sampler.sample([prompt] * group * 2)
        rewards = [float(parse_vote(text, game.num_players).na) for text in completions.texts]
        rates.append(float(np.mean(rewards)))
        model.train()
        logprobs = token_logprobs(model, completions, sampler.sampling)
        advantages = torch.tensor(group_advantages(rewards, group), dtype=torch.float32)
        loss, _ = policy_loss(logprobs, completions.old_logprobs, None, advantages, completions.completion_mask, config)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    early, late = np.mean(rates[:6]), np.mean(rates[-6:])
    assert late > early + 0.25, f"N/A rate went {early:.2f} -> {late:.2f}: {rates}"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-model", "no such folder"),
        ("folder-not-a-model", "no config.json"),
        ("not-pairs", "not a pair dataset"),
        ("one-sample", "num_samples (G) must be an integer >= 2"),
        ("one-civilian", "game civilians must be an integer >= 2"),
        ("unknown-key", "unknown key(s) ['sample']"),
        ("unknown-recipe", "neither a shipped recipe"),
    ],
)
def test_bad_inputs_fail_before_any_model_loads(case, message, tmp_path, tiny_model, chart_dataset):
    model, data, extra = str(tiny_model), str(chart_dataset), []
    if case == "missing-model":
        model = str(tmp_path / "no-such-model")
    elif case == "folder-not-a-model":
        model = str(tmp_path)
    elif case == "not-pairs":
        data = str(pairless_dataset(tmp_path / "other"))
    elif case == "one-sample":
        extra = ["--set", "rollout.num_samples=1"]
    elif case == "one-civilian":
        extra = ["--set", "game.civilians=1"]
    elif case == "unknown-key":
        extra = ["--set", "rollout.sample=3"]
    else:
        extra = ["--recipe", "fast"]
    command = ["train", "--data", data, "--model", model, "--out", str(tmp_path / "run"), "--recipe", "tiny-cpu"]
    result = runner.invoke(app, command + extra)
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_shipped_recipes_hold_the_papers_settings_and_take_overrides(tmp_path):
    from training.recipe import load_recipe

    paper = load_recipe("paper")
    assert (paper.optim.lr, paper.warmup_steps, paper.rollout.num_samples, paper.loss.kl_coef) == (1e-5, 10, 8, 0.04)
    assert (paper.max_steps, paper.rollout.temperature, paper.rollout.max_new_tokens) == (100, 0.8, 1024)
    assert (paper.precision, paper.game.civilians, paper.game.rounds, paper.scheduler.mode) == (
        "bf16",
        4,
        2,
        "iterative",
    )
    assert (paper.scheduler.patience, paper.scheduler.min_dwell) == (20, 5), "the paper's P and K_min (Table 5)"
    tiny = load_recipe("tiny-cpu", ["optim.lr=2e-4", "scheduler.mode=fixed:2", "game.voters=judge"])
    assert (tiny.optim.lr, tiny.scheduler.fixed_interval, tiny.game.voters) == (2e-4, 2, "judge")
    own = tmp_path / "mine.yaml"
    own.write_text("max_steps: 7\noptim:\n  lr: 3e-6\n")
    assert (load_recipe(str(own)).max_steps, load_recipe(str(own)).optim.lr) == (7, 3e-6)
