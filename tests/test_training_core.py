"""The pure core of Iterative-SPO: configs, game set-up, prompts, parsing, rewards, the stage scheduler, the loss."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from datagen.errors import ConfigError, InputError
from datagen.loading import load_pairs
from training.config import GameConfig, LossConfig, RewardConfig, SchedulerConfig
from training.game import DIFFERENCE_KINDS, ClueTurn, Role, SpyVariant, Transcript, clue_turns, make_game
from training.loss import policy_loss
from training.parsing import PLACEHOLDER_CLUE, Vote, last_boxed, parse_clue, parse_vote
from training.prompts import clue_messages, judge_messages, vote_messages
from training.rewards import (
    RoleBaselines,
    clue_rewards,
    decision_rewards,
    game_accuracy,
    group_advantages,
    na_rate,
    spy_identified,
    vote_counts,
)
from training.scheduler import Stage, StageScheduler


def synthetic_record(domain: str = "chart", size: tuple[int, int] = (32, 24)) -> dict:
    """A pair record with distinguishable solid images, for tests that count thousands of games."""
    return {
        "id": f"{domain}-s0-00000000",
        "domain": domain,
        "civilian": Image.new("RGB", size, (10, 20, 30)),
        "spy": Image.new("RGB", size, (200, 20, 30)),
        "description": "The first bar is taller.",
    }


def colours(image: Image.Image) -> set[tuple[int, ...]]:
    return {tuple(int(c) for c in pixel) for pixel in np.asarray(image).reshape(-1, 3)}


def seat_vote(seat: int) -> Vote:
    return Vote(seat=seat, na=False, valid=True)


NA = Vote(seat=None, na=True, valid=True)
INVALID = Vote(seat=None, na=False, valid=False)


# ---- configs ---------------------------------------------------------------------------------------------------


def test_default_configs_are_the_papers_and_valid():
    for config in (GameConfig(), RewardConfig(), SchedulerConfig(), LossConfig()):
        config.validate()
    assert GameConfig().players == 5 and GameConfig().rounds == 2
    assert (RewardConfig().beta, RewardConfig().lam, RewardConfig().baseline_decay) == (0.1, 0.1, 0.95)
    assert (LossConfig().clip_eps, LossConfig().kl_coef) == (0.2, 0.04)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (GameConfig(civilians=1), "civilians"),
        (GameConfig(rounds=0), "rounds"),
        (GameConfig(blank_spy_rate=1.5), "blank_spy_rate"),
        (GameConfig(identical_spy_rate=-0.1), "identical_spy_rate"),
        (GameConfig(blank_spy_rate=0.6, identical_spy_rate=0.6), "blank_spy_rate + identical_spy_rate"),
        (GameConfig(voters="everyone"), "voters"),
        (RewardConfig(beta=-0.1), "beta"),
        (RewardConfig(baseline_decay=1.0), "baseline_decay"),
        (RewardConfig(na=2.0), "correct > na >= wrong"),
        (SchedulerConfig(mode="sometimes"), "mode"),
        (SchedulerConfig(mode="fixed:0"), "fixed:0"),
        (SchedulerConfig(mode="fixed:x"), "fixed:x"),
        (SchedulerConfig(ema_decay=1.0), "ema_decay"),
        (SchedulerConfig(to_clue_acc=1.2), "to_clue_acc"),
        (SchedulerConfig(min_dwell=0), "min_dwell"),
        (SchedulerConfig(patience=3), "patience"),
        (LossConfig(clip_eps=0.0), "clip_eps"),
        (LossConfig(kl_coef=-1.0), "kl_coef"),
        (LossConfig(aggregation="batch"), "aggregation"),
    ],
)
def test_a_bad_config_value_fails_naming_it(config, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        config.validate()


def test_fixed_mode_interval_is_parsed():
    assert SchedulerConfig(mode="fixed:3").fixed_interval == 3
    assert SchedulerConfig().fixed_interval is None


# ---- game -----------------------------------------------------------------------------------------------------


def test_a_game_from_a_real_chart_record_seats_one_spy_with_the_spy_image(chart_dataset):
    pairs = load_pairs(chart_dataset)
    record = pairs[0]
    game = make_game(record, GameConfig(), np.random.default_rng(0))
    assert game.pair_id == record["id"] and game.domain == "chart" and game.description == record["description"]
    assert game.num_players == 5 and game.rounds == 2
    assert [p.seat for p in game.players] == [1, 2, 3, 4, 5]
    assert [p.role for p in game.players].count(Role.SPY) == 1
    assert game.role(game.spy_seat) is Role.SPY
    assert game.spy_variant is SpyVariant.EDITED
    assert np.array_equal(np.asarray(game.image(game.spy_seat)), np.asarray(record["spy"].convert("RGB")))
    for seat in game.civilian_seats:
        assert np.array_equal(np.asarray(game.image(seat)), np.asarray(record["civilian"].convert("RGB")))
    assert not np.array_equal(np.asarray(game.spy_image), np.asarray(game.civilian_image))
    assert game.difference_kind == DIFFERENCE_KINDS["chart"]


def test_speaking_orders_are_permutations_shuffled_per_round_unless_disabled():
    rng = np.random.default_rng(1)
    games = [make_game(synthetic_record(), GameConfig(rounds=3), rng) for _ in range(50)]
    orders = [order for game in games for order in game.speaking_orders]
    assert all(sorted(order) == [1, 2, 3, 4, 5] for order in orders)
    assert len(set(orders)) > 30
    assert any(game.speaking_orders[0] != game.speaking_orders[1] for game in games)
    fixed = make_game(synthetic_record(), GameConfig(shuffle_order=False), rng)
    assert fixed.speaking_orders == ((1, 2, 3, 4, 5), (1, 2, 3, 4, 5))
    assert clue_turns(games[0], 2) == list(games[0].speaking_orders[1])
    with pytest.raises(ValueError, match="round 4"):
        clue_turns(games[0], 4)


def test_the_spy_seat_is_uniform():
    rng = np.random.default_rng(2)
    seats = Counter(make_game(synthetic_record(), GameConfig(civilians=3), rng).spy_seat for _ in range(4000))
    assert sorted(seats) == [1, 2, 3, 4]
    # Binomial(4000, 1/4) has std ~27; 5 std either side.
    assert all(abs(count - 1000) < 140 for count in seats.values())


def test_noise_variants_occur_at_their_rates_and_show_the_right_image():
    config = GameConfig(blank_spy_rate=0.1, identical_spy_rate=0.2)
    rng = np.random.default_rng(3)
    games = [make_game(synthetic_record(), config, rng) for _ in range(4000)]
    variants = Counter(game.spy_variant for game in games)
    assert abs(variants[SpyVariant.BLANK] / 4000 - 0.1) < 0.025
    assert abs(variants[SpyVariant.IDENTICAL] / 4000 - 0.2) < 0.03
    blank = next(g for g in games if g.spy_variant is SpyVariant.BLANK)
    assert blank.spy_image.size == (32, 24) and colours(blank.spy_image) == {(255, 255, 255)}
    assert blank.image(blank.spy_seat) is blank.spy_image
    same = next(g for g in games if g.spy_variant is SpyVariant.IDENTICAL)
    assert same.image(same.spy_seat) is same.civilian_image
    edited = next(g for g in games if g.spy_variant is SpyVariant.EDITED)
    assert colours(edited.image(edited.spy_seat)) == {(200, 20, 30)}


def test_a_game_is_a_function_of_the_rng_state():
    def summary(seed: int) -> list:
        rng = np.random.default_rng(seed)
        games = [make_game(synthetic_record(), GameConfig(blank_spy_rate=0.3), rng) for _ in range(20)]
        return [(g.spy_seat, g.speaking_orders, g.spy_variant) for g in games]

    assert summary(7) == summary(7)
    assert summary(7) != summary(8)


def test_noise_rates_do_not_shift_the_seats_of_later_games():
    def seats(config: GameConfig) -> list[int]:
        rng = np.random.default_rng(11)
        return [make_game(synthetic_record(), config, rng).spy_seat for _ in range(30)]

    assert seats(GameConfig()) == seats(GameConfig(blank_spy_rate=0.5))


def test_bad_records_are_input_errors_naming_the_pair():
    rng = np.random.default_rng(0)
    record = synthetic_record()
    with pytest.raises(InputError, match="chart-s0-00000000.*'spy'"):
        make_game({k: v for k, v in record.items() if k != "spy"}, GameConfig(), rng)
    with pytest.raises(InputError, match="not a decoded PIL image"):
        make_game({**record, "civilian": b"png bytes"}, GameConfig(), rng)
    with pytest.raises(InputError, match="must match"):
        make_game({**record, "spy": Image.new("RGB", (8, 8))}, GameConfig(), rng)


def test_an_unknown_domain_gets_the_generic_difference_wording():
    game = make_game(synthetic_record("microscopy"), GameConfig(), np.random.default_rng(0))
    assert game.difference_kind == DIFFERENCE_KINDS["generic"]


# ---- prompts --------------------------------------------------------------------------------------------------


def played_game() -> tuple:
    """A game with its first round spoken: each seat's clue and reasoning name the seat."""
    game = make_game(synthetic_record(), GameConfig(), np.random.default_rng(5))
    transcript = Transcript()
    for seat in clue_turns(game, 1):
        transcript.add(ClueTurn(1, seat, f"clue-of-{seat}", f"secret-thought-of-{seat}", True, f"reply-of-{seat}"))
    return game, transcript


def message_text(messages: list[dict]) -> tuple[str, str]:
    system, user = messages
    assert system["role"] == "system" and user["role"] == "user"
    assert user["content"][0]["type"] == "image"
    return system["content"][0]["text"], user["content"][1]["text"]


def test_clue_prompts_give_role_history_and_only_own_reasoning():
    game, transcript = played_game()
    civilian = game.civilian_seats[0]
    for seat in (game.spy_seat, civilian):
        messages = clue_messages(game, seat, 2, transcript)
        system, text = message_text(messages)
        assert messages[1]["content"][0]["image"] is game.image(seat)
        assert "5 players" in system and "2 clue round(s)" in system and game.difference_kind in system
        assert f"You are player {seat}." in text and "round 2 of 2" in text
        assert ("You are the spy" in text) == (seat == game.spy_seat)
        assert ("You are a civilian" in text) == (seat != game.spy_seat)
        for other in range(1, 6):
            assert f"Round 1, player {other}: clue-of-{other}" in text
            assert (f"secret-thought-of-{other}" in text) == (other == seat)
        assert "\\boxed{...}" in text


def test_the_first_speaker_sees_no_history():
    game = make_game(synthetic_record(), GameConfig(), np.random.default_rng(5))
    _, text = message_text(clue_messages(game, clue_turns(game, 1)[0], 1, Transcript()))
    assert "Clues so far: none yet." in text and "private reasoning" not in text


def test_vote_prompts_are_for_civilians_and_the_judge_sees_no_reasoning():
    game, transcript = played_game()
    civilian = game.civilian_seats[-1]
    messages = vote_messages(game, civilian, transcript)
    _, text = message_text(messages)
    assert messages[1]["content"][0]["image"] is game.civilian_image
    assert f"secret-thought-of-{civilian}" in text and f"secret-thought-of-{game.spy_seat}" not in text
    assert "\\boxed{N/A}" in text and f"clue-of-{game.spy_seat}" in text
    with pytest.raises(ValueError, match="spy does not vote"):
        vote_messages(game, game.spy_seat, transcript)
    judge = judge_messages(game, transcript)
    _, text = message_text(judge)
    assert judge[1]["content"][0]["image"] is game.civilian_image
    assert "judge" in text and "secret-thought" not in text and "clue-of-1" in text


def test_prompts_differ_across_domains_only_in_the_difference_wording():
    texts = {}
    for domain in ("clevr", "chart", "realworld"):
        game = make_game(synthetic_record(domain), GameConfig(), np.random.default_rng(5))
        system, user = message_text(clue_messages(game, 1, 1, Transcript()))
        texts[domain] = (system.replace(DIFFERENCE_KINDS[domain], "<DIFF>"), user)
    assert len({system for system, _ in texts.values()}) == 1
    assert len({user for _, user in texts.values()}) == 1


# ---- parsing --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("answer \\boxed{3}", "3"),
        ("draft \\boxed{1} then final \\boxed{4}", "4"),
        ("\\boxed{the set {a, {b}} is red}", "the set {a, {b}} is red"),
        ("\\boxed {spaced}", "spaced"),
        ("no box here", None),
        ("\\boxed{2} and a cut-off \\boxed{the red", None),
        ("\\boxed{}", ""),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_parse_clue_splits_reasoning_from_the_last_box():
    clue = parse_clue("I see a red cube.\nMaybe \\boxed{draft}.\nFinal: \\boxed{There is a  red\ncube.}")
    assert clue.valid and clue.clue == "There is a red cube."
    assert clue.reasoning.startswith("I see a red cube.") and clue.reasoning.endswith("Final:")
    assert parse_clue("\\boxed{\\text{A blue bar}}").clue == "A blue bar"
    for garbage in ("I refuse.", "\\boxed{   }", "\\boxed{cut off"):
        bad = parse_clue(garbage)
        assert not bad.valid and bad.clue == PLACEHOLDER_CLUE and bad.reasoning == garbage.strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{3}", Vote(3, False, True)),
        ("I think \\boxed{1}, no: \\boxed{Player 4}", Vote(4, False, True)),
        ("\\boxed{\\text{player #2}}", Vote(2, False, True)),
        ("\\boxed{5.}", Vote(5, False, True)),
        ("\\boxed{N/A}", Vote(None, True, True)),
        ("\\boxed{n/a}", Vote(None, True, True)),
        ("\\boxed{NA}", Vote(None, True, True)),
        ("\\boxed{ N / A }", Vote(None, True, True)),
        ("\\boxed{not sure}", Vote(None, True, True)),
        ("\\boxed{6}", Vote(None, False, False)),
        ("\\boxed{0}", Vote(None, False, False)),
        ("\\boxed{3 or 4}", Vote(None, False, False)),
        ("\\boxed{the red one}", Vote(None, False, False)),
        ("player 3 is the spy", Vote(None, False, False)),
        ("\\boxed{3", Vote(None, False, False)),
    ],
)
def test_parse_vote(text, expected):
    assert parse_vote(text, 5) == expected


# ---- rewards --------------------------------------------------------------------------------------------------


def test_clue_rewards_match_a_hand_computed_game():
    # 5 players, spy at seat 3; votes: 3, 3, 1, N/A, invalid -> v = [1, 0, 2, 0, 0].
    votes = [seat_vote(3), seat_vote(3), seat_vote(1), NA, INVALID]
    assert vote_counts(votes, 5) == [1, 0, 2, 0, 0]
    # v_c = 1/4; psi = 2 - 1/4 = 1.75; spy: -0.1 * 1.75; civilians: 0.1/4 * 1.75 - 0.1 * (v_j - 0.25).
    expected = [0.04375 - 0.075, 0.04375 + 0.025, -0.175, 0.04375 + 0.025, 0.04375 + 0.025]
    assert clue_rewards(votes, 3, 5, RewardConfig()) == pytest.approx(expected)
    assert sum(expected) == pytest.approx(0.0)


def test_clue_rewards_sum_to_zero_for_any_votes_and_constants():
    rng = np.random.default_rng(0)
    for _ in range(200):
        players = int(rng.integers(3, 8))
        votes = [seat_vote(int(s)) for s in rng.integers(1, players + 1, size=int(rng.integers(0, 12)))]
        config = RewardConfig(beta=float(rng.uniform(0, 1)), lam=float(rng.uniform(0, 1)))
        rewards = clue_rewards(votes, int(rng.integers(1, players + 1)), players, config)
        assert sum(rewards) == pytest.approx(0.0, abs=1e-12)


def test_repeated_vote_samples_keep_the_reward_scale():
    once = [seat_vote(2), seat_vote(1), seat_vote(2)]
    assert clue_rewards(once * 4, 2, 4, RewardConfig(), samples_per_voter=4) == pytest.approx(
        clue_rewards(once, 2, 4, RewardConfig())
    )


def test_decision_rewards_and_the_release_shaping():
    votes = [seat_vote(2), NA, seat_vote(1), INVALID]
    assert decision_rewards(votes, 2, RewardConfig()) == [1.0, -0.5, -1.0, -1.0]
    shaped = decision_rewards(votes, 2, RewardConfig(release_shaping=True))
    assert shaped == pytest.approx([1.2 + 0.3 + 0.99, -0.6 + 0.3, -1.2 + 0.3, -1.2 - 0.3])


def test_group_advantages_normalise_within_each_group():
    rewards = [1.0, -1.0, -0.5, 1.0, 1.0, 1.0]
    advantages = group_advantages(rewards, 2)
    assert advantages[:2] == pytest.approx([1.0, -1.0])
    assert advantages[2:4] == pytest.approx([-1.0, 1.0])
    assert advantages[4:] == [0.0, 0.0]
    group = np.array([1.0, -0.5, -1.0, 1.0])
    assert group_advantages(group.tolist(), 4) == pytest.approx((group - group.mean()) / (group.std() + 1e-8))
    assert group_advantages([0.3, -1.0], 1) == [0.0, 0.0]
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(rewards, 4)


def test_role_baselines_are_emas_per_role_and_survive_a_checkpoint():
    baselines = RoleBaselines(0.9)
    roles = [Role.SPY, Role.CIVILIAN, Role.CIVILIAN]
    assert baselines.advantages([-0.2, 0.1, 0.1], roles) == pytest.approx([-0.2, 0.1, 0.1])
    baselines.update([-0.2, 0.1, 0.3], roles)
    assert baselines.values[Role.SPY] == pytest.approx(0.1 * -0.2)
    assert baselines.values[Role.CIVILIAN] == pytest.approx(0.1 * 0.2)
    baselines.update([0.5], [Role.CIVILIAN])
    assert baselines.values[Role.SPY] == pytest.approx(-0.02)
    assert baselines.values[Role.CIVILIAN] == pytest.approx(0.9 * 0.02 + 0.1 * 0.5)
    assert baselines.advantages([0.0, 0.0], [Role.SPY, Role.CIVILIAN]) == pytest.approx([0.02, -0.068])
    restored = RoleBaselines(0.9)
    restored.load_state_dict(baselines.state_dict())
    assert restored.values == baselines.values and restored.updates == 2
    with pytest.raises(ValueError, match="2 rewards but 1 roles"):
        baselines.update([0.0, 0.0], [Role.SPY])


def test_the_spy_is_identified_only_when_it_tops_every_seat_and_na():
    assert spy_identified([seat_vote(2), seat_vote(2), seat_vote(1)], 2, 4)
    assert not spy_identified([seat_vote(2), seat_vote(1)], 2, 4), "a tie with a civilian is a miss"
    assert not spy_identified([NA, INVALID], 2, 4)
    # The case: 1 spy vote out of 8, the other 7 N/A: N/A is the arg-max, so the game is a miss.
    assert not spy_identified([seat_vote(3)] + [NA] * 7, 3, 5)
    assert not spy_identified([seat_vote(3), NA], 3, 5), "a tie with N/A is a miss"
    assert spy_identified([seat_vote(3), seat_vote(3), NA, seat_vote(1)], 3, 5)
    # Invalid votes count for nothing: 1 spy vote beats 0 N/A even with 5 invalid votes.
    assert spy_identified([seat_vote(3)] + [INVALID] * 5, 3, 5)
    games = [[seat_vote(2), seat_vote(2)], [seat_vote(1), NA], [NA, NA], [seat_vote(4), NA, NA]]
    assert game_accuracy(games, [2, 1, 3, 4], 4) == pytest.approx(1 / 4)
    assert na_rate([vote for votes in games for vote in votes]) == pytest.approx(5 / 9)
    assert na_rate([INVALID, seat_vote(1)]) == 0.0


# ---- scheduler ------------------------------------------------------------------------------------------------


def corrected_ema(values: list[float], rho: float) -> float:
    """The bias-corrected EMA written as the normalised weighted mean it is."""
    weights = [rho ** (len(values) - 1 - i) for i in range(len(values))]
    return sum(w * v for w, v in zip(weights, values)) / sum(weights)


def run_scheduler(config: SchedulerConfig, stats: list[tuple[float, float]]) -> list[Stage]:
    scheduler = StageScheduler(config)
    return [scheduler.stage] + [scheduler.update(acc, na) for acc, na in stats]


def test_iterative_starts_in_decision_and_switches_after_the_dwell_thanks_to_bias_correction():
    stages = run_scheduler(SchedulerConfig(), [(1.0, 0.0)] * 12)
    # stages[t] is the stage of step t + 1; five decision steps, then clue (an uncorrected EMA needs ~45 steps).
    assert stages[:5] == [Stage.DECISION] * 5 and stages[5:] == [Stage.CLUE] * 8


def test_the_scheduler_logs_raw_and_corrected_emas():
    scheduler = StageScheduler(SchedulerConfig())
    history = [(1.0, 0.0), (0.5, 0.25), (0.0, 1.0), (0.75, 0.5)]
    for acc, na in history:
        scheduler.update(acc, na)
    stats = scheduler.stats()
    assert stats["ema_accuracy"] == pytest.approx(corrected_ema([a for a, _ in history], 0.95))
    assert stats["ema_na"] == pytest.approx(corrected_ema([n for _, n in history], 0.95))
    assert stats["ema_accuracy_raw"] == pytest.approx(stats["ema_accuracy"] * (1 - 0.95**4))
    assert stats["dwell"] == 4 and stats["stage"] == "decision" and stats["steps"] == 4


def test_decision_stays_while_na_is_high_and_clue_returns_when_accuracy_drops():
    assert set(run_scheduler(SchedulerConfig(), [(1.0, 0.2)] * 30)) == {Stage.DECISION}
    history = [(1.0, 0.0)] * 5 + [(0.0, 0.0)] * 20
    stages = run_scheduler(SchedulerConfig(), history)
    assert stages[5] is Stage.CLUE
    # Expected switch back: the first clue step t >= 5 steps into the stage with corrected error >= 0.4.
    back = next(t for t in range(10, 26) if 1 - corrected_ema([a for a, _ in history[:t]], 0.95) >= 0.4)
    assert back == 10  # the dwell, not the threshold, is what holds the clue stage here
    assert stages[back - 1] is Stage.CLUE and stages[back] is Stage.DECISION


def test_clue_returns_to_decision_when_voters_are_unsure():
    history = [(1.0, 0.0)] * 5 + [(1.0, 0.6)] * 25
    stages = run_scheduler(SchedulerConfig(min_dwell=5), history)
    na_back = next(t for t in range(10, 31) if corrected_ema([n for _, n in history[:t]], 0.95) >= 0.5)
    assert na_back > 10  # here the threshold, not the dwell, decides
    assert stages[5:na_back] == [Stage.CLUE] * (na_back - 5) and stages[na_back] is Stage.DECISION


def test_patience_forces_a_switch():
    # Accuracy 0.7 solves neither stage: decision needs 0.9, clue gives way at an error of 0.4.
    stages = run_scheduler(SchedulerConfig(patience=7), [(0.7, 0.3)] * 21)
    assert stages == [Stage.DECISION] * 7 + [Stage.CLUE] * 7 + [Stage.DECISION] * 7 + [Stage.CLUE]
    assert set(run_scheduler(SchedulerConfig(), [(0.7, 0.3)] * 21)) == {Stage.DECISION}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("fixed:1", "DCDCDCDC"),
        ("fixed:3", "DDDCCCDD"),
        ("clue-only", "CCCCCCCC"),
        ("decision-only", "DDDDDDDD"),
    ],
)
def test_schedule_modes(mode, expected):
    stages = run_scheduler(SchedulerConfig(mode=mode), [(1.0, 0.0)] * 7)
    assert "".join(stage.value[0].upper() for stage in stages) == expected


def test_a_restored_scheduler_continues_like_an_uninterrupted_one():
    rng = np.random.default_rng(4)
    history = [(float(a), float(n)) for a, n in rng.uniform(0, 1, size=(60, 2)) ** [0.2, 3]]
    whole = StageScheduler(SchedulerConfig(patience=9))
    straight = [whole.update(a, n) for a, n in history]
    first = StageScheduler(SchedulerConfig(patience=9))
    resumed = [first.update(a, n) for a, n in history[:25]]
    second = StageScheduler(SchedulerConfig(patience=9))
    second.load_state_dict(first.state_dict())
    resumed += [second.update(a, n) for a, n in history[25:]]
    assert resumed == straight and second.stats() == whole.stats()
    assert whole.switches > 2


def test_scheduler_rejects_statistics_outside_zero_one():
    scheduler = StageScheduler(SchedulerConfig())
    for acc, na in ((1.2, 0.0), (0.5, math.nan), (-0.1, 0.0)):
        with pytest.raises(ValueError, match="must be a number in"):
            scheduler.update(acc, na)
    assert scheduler.steps == 0


# ---- loss -----------------------------------------------------------------------------------------------------


def loop_loss(logp, old, ref, adv, mask, eps, kl_coef, aggregation):
    """The loss token by token, with plain Python floats for everything but the gradient path."""
    per_sequence, all_tokens, clipped, kls, approx = [], [], 0, [], []
    for b in range(logp.shape[0]):
        terms = []
        for t in range(logp.shape[1]):
            if not mask[b, t]:
                continue
            ratio = torch.exp(logp[b, t] - float(old[b, t]))
            a = float(adv[b])
            surrogate = torch.minimum(ratio * a, torch.clamp(ratio, 1 - eps, 1 + eps) * a)
            gap = float(ref[b, t]) - logp[b, t]
            kl = torch.exp(gap) - gap - 1
            terms.append(-surrogate + kl_coef * kl)
            r = ratio.item()
            clipped += (r > 1 + eps and a > 0) or (r < 1 - eps and a < 0)
            kls.append(kl.item())
            approx.append((r - 1) - math.log(r))
        per_sequence.append(sum(terms) / len(terms))
        all_tokens.extend(terms)
    loss = sum(per_sequence) / len(per_sequence) if aggregation == "sequence" else sum(all_tokens) / len(all_tokens)
    n = len(kls)
    return loss, clipped / n, sum(kls) / n, sum(approx) / n


@pytest.mark.parametrize("aggregation", ["sequence", "token"])
def test_the_loss_equals_a_token_by_token_implementation(aggregation):
    generator = torch.Generator().manual_seed(0)
    batch, length = 6, 9
    old = -torch.rand(batch, length, generator=generator, dtype=torch.float64) * 3
    logp = (old + torch.randn(batch, length, generator=generator, dtype=torch.float64) * 0.4).requires_grad_()
    ref = old + torch.randn(batch, length, generator=generator, dtype=torch.float64) * 0.3
    adv = torch.randn(batch, generator=generator, dtype=torch.float64)
    lengths = torch.tensor([9, 1, 4, 7, 2, 9])
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    config = LossConfig(aggregation=aggregation)

    loss, stats = policy_loss(logp, old, ref, adv, mask, config)
    (grad,) = torch.autograd.grad(loss, logp)
    expected, clip_fraction, kl, approx_kl = loop_loss(logp, old, ref, adv, mask, 0.2, 0.04, aggregation)
    (expected_grad,) = torch.autograd.grad(expected, logp)

    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    assert torch.allclose(grad, expected_grad, atol=1e-12)
    assert 0 < clip_fraction < 1
    assert stats.clip_fraction == pytest.approx(clip_fraction)
    assert stats.kl == pytest.approx(kl) and stats.approx_kl == pytest.approx(approx_kl)
    assert stats.tokens == int(lengths.sum()) and stats.loss == pytest.approx(loss.item())


def test_padding_does_not_reach_the_loss():
    generator = torch.Generator().manual_seed(1)
    logp = -torch.rand(3, 5, generator=generator)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    adv = torch.tensor([1.0, -0.5, 2.0])
    base, _ = policy_loss(logp, logp - 0.1, logp + 0.2, adv, mask, LossConfig())
    noisy = torch.where(mask.bool(), logp, torch.full_like(logp, 50.0))
    padded, _ = policy_loss(noisy, logp - 0.1, logp + 0.2, adv, mask, LossConfig())
    assert float(padded) == pytest.approx(float(base))


def test_on_policy_without_kl_the_loss_is_minus_the_mean_advantage():
    logp = -torch.rand(4, 6, generator=torch.Generator().manual_seed(2))
    adv = torch.tensor([1.0, -1.0, 0.5, 2.5])
    loss, stats = policy_loss(logp, logp, None, adv, torch.ones(4, 6), LossConfig(kl_coef=0.0))
    assert float(loss) == pytest.approx(-0.75)
    assert stats.clip_fraction == 0.0 and stats.kl == 0.0 and stats.approx_kl == pytest.approx(0.0)


def test_bad_loss_inputs_fail_clearly():
    logp = torch.zeros(2, 3)
    ones = torch.ones(2, 3)
    with pytest.raises(ValueError, match="no reference"):
        policy_loss(logp, logp, None, torch.zeros(2), ones, LossConfig())
    with pytest.raises(ValueError, match="mask has shape"):
        policy_loss(logp, logp, logp, torch.zeros(2), torch.ones(2, 4), LossConfig())
    with pytest.raises(ValueError, match="advantages must be"):
        policy_loss(logp, logp, logp, torch.zeros(2, 3), ones, LossConfig())
    with pytest.raises(ValueError, match="EOS"):
        policy_loss(logp, logp, logp, torch.zeros(2), torch.tensor([[1, 1, 0], [0, 0, 0]]), LossConfig())


def test_a_vote_outside_the_game_is_a_programming_error_not_a_vote():
    # parse_vote already turns an out-of-range seat into an invalid vote; one reaching here is a bug.
    with pytest.raises(ValueError, match="seat 6"):
        vote_counts([seat_vote(6)], 5)
