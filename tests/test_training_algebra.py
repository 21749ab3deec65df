"""The algebra of Iterative-SPO through real games with scripted players (no model): which reward and advantage
goes to which seat, turn and sample; the 1/G scale; group normalisation; what the stage scheduler is fed and
when it switches; the role baselines. Every expected number is computed here, by hand or by an independent
formula, never by the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scripted_players import ScriptedPlayers, boxed, fresh_games

from training.config import GameConfig, RewardConfig, SchedulerConfig
from training.game import Role
from training.iteration import StepOutcome, advance
from training.parsing import Vote
from training.rewards import RoleBaselines, clue_rewards
from training.scheduler import Stage, StageScheduler
from training.selfplay import play_games

BETA = LAM = 0.1


def play(games, stage, players, *, num_samples, config, baselines=None):
    return play_games(
        players,
        games,
        stage=stage,
        num_samples=num_samples,
        game_config=config,
        reward_config=RewardConfig(),
        baselines=baselines or RoleBaselines(0.95),
    )


def by_hand_clue_rewards(tallies: dict[int, float], spy: int, players: int) -> dict[int, float]:
    """The paper's zero-sum clue rewards from votes per seat (already divided by G), written out."""
    civilians = [seat for seat in range(1, players + 1) if seat != spy]
    v_bar = sum(tallies.get(seat, 0.0) for seat in civilians) / len(civilians)
    psi = tallies.get(spy, 0.0) - v_bar
    rewards = {spy: -BETA * psi}
    for seat in civilians:
        rewards[seat] = BETA / len(civilians) * psi - LAM * (tallies.get(seat, 0.0) - v_bar)
    return rewards


# ---- clue rewards: the 1/G scale ---------------------------------------------------------------------------------


def test_clue_rewards_divide_vote_counts_by_g_hand_computed():
    # 5 players, spy 3, G = 2: votes 3, 3, 1, N/A, invalid, 3 -> counts [1, 0, 3, 0, 0] / 2 = [.5, 0, 1.5, 0, 0].
    # v_bar = (.5 + 0 + 0 + 0) / 4 = .125; psi = 1.5 - .125 = 1.375.
    # spy: -.1 * 1.375 = -.1375; seat 1: .1/4 * 1.375 - .1 * (.5 - .125) = .034375 - .0375 = -.003125;
    # seats 2, 4, 5: .034375 - .1 * (0 - .125) = .046875.
    votes = [Vote(3, False, True), Vote(3, False, True), Vote(1, False, True), Vote(None, True, True)]
    votes += [Vote(None, False, False), Vote(3, False, True)]
    rewards = clue_rewards(votes, 3, 5, RewardConfig(), samples_per_voter=2)
    assert rewards == pytest.approx([-0.003125, 0.046875, -0.1375, 0.046875, 0.046875], abs=1e-12)


# ---- clue stage: which advantage goes to which seat's turn -------------------------------------------------------


def test_every_clue_turn_gets_its_own_seats_reward_minus_its_roles_baseline():
    config = GameConfig(civilians=3, rounds=2)
    games = fresh_games(3, config, seed=11)
    G = 2
    # Each civilian votes by its seat: lowest civilian seat -> spy then N/A; next -> spy twice; last -> the lowest
    # civilian seat, then an invalid reply. So every game has spy 3/2, lowest civilian 1/2 vote, others 0.
    scripts = {}
    for game in games:
        low, middle, high = game.civilian_seats
        scripts[game.pair_id] = {
            low: [boxed(game.spy_seat), boxed("N/A")],
            middle: [boxed(game.spy_seat), boxed(game.spy_seat)],
            high: [boxed(low), "no box at all"],
        }
    players = ScriptedPlayers(games, vote=lambda game, voter, g: scripts[game.pair_id][voter])
    baselines = RoleBaselines(0.95)
    baselines.values = {Role.SPY: -0.3, Role.CIVILIAN: 0.2}  # asymmetric, so a swapped role shows
    trajectory = play(games, Stage.CLUE, players, num_samples=G, config=config, baselines=baselines)

    expected = {}
    for game in games:
        low = game.civilian_seats[0]
        rewards = by_hand_clue_rewards({game.spy_seat: 3 / G, low: 1 / G}, game.spy_seat, 4)
        expected[game.pair_id] = {
            seat: reward - (-0.3 if seat == game.spy_seat else 0.2) for seat, reward in rewards.items()
        }
    assert len(trajectory.chunks) == 2 * 4, "one chunk per clue turn: 2 rounds x 4 players"
    for turn, (completions, advantages) in enumerate(trajectory.chunks):
        round_number = turn // 4 + 1
        assert len(completions) == len(games) == len(advantages)
        for row, game in enumerate(games):
            seat = game.speaking_orders[round_number - 1][turn % 4]
            assert completions.texts[row].endswith(f"clue of seat {seat} in round {round_number}}}")
            assert advantages[row].item() == pytest.approx(expected[game.pair_id][seat], abs=1e-6)
    for played in trajectory.games:
        assert played.clue_rewards == pytest.approx(
            [
                expected[played.game.pair_id][seat] + (-0.3 if seat == played.game.spy_seat else 0.2)
                for seat in range(1, 5)
            ]
        )
    assert baselines.updates == 0, "playing reads the baselines; Alg. 1 updates them after the step"


# ---- decision stage: which advantage goes to which vote ----------------------------------------------------------


def test_vote_advantages_pair_with_their_own_completions_normalised_per_group():
    config = GameConfig(civilians=2, rounds=1)
    games = fresh_games(2, config, seed=5)
    G = 4

    # Voter scripts by (game, voter): a group of G replies each, different mixes so group means differ.
    def vote(game, voter, g):
        first, second = game.civilian_seats
        other = first if voter == second else second
        if game is games[0]:
            return (
                [boxed(game.spy_seat), boxed(game.spy_seat), boxed(other), boxed("N/A")]
                if voter == first
                else ([boxed("N/A")] * 3 + [boxed(game.spy_seat)])
            )
        return [boxed(game.spy_seat)] * 4 if voter == first else ["\\boxed{7", boxed(other), boxed(other), boxed("N/A")]

    trajectory = play(games, Stage.DECISION, ScriptedPlayers(games, vote=vote), num_samples=G, config=config)
    (completions, advantages), = trajectory.chunks  # fmt: skip
    assert len(completions) == 2 * 2 * G

    # Hand-computed: group [1, 1, -1, -.5]: mean .125, std sqrt(.796875) = .8926785...
    std = math.sqrt(((0.875**2) * 2 + 1.125**2 + 0.625**2) / 4)
    assert std == pytest.approx(0.8926785, abs=1e-7)
    first_group = [0.875 / std, 0.875 / std, -1.125 / std, -0.625 / std]
    assert advantages[:4].tolist() == pytest.approx(first_group, abs=1e-6)
    # Every row: the reward of its own text, normalised within its own group of G (not over the batch).
    rewards = []
    for row, text in enumerate(completions.texts):
        game = games[row // (2 * G)]
        if text.endswith(f"{{{game.spy_seat}}}"):
            rewards.append(1.0)
        elif text.endswith("{N/A}"):
            rewards.append(-0.5)
        else:
            rewards.append(-1.0)
    grouped = np.asarray(rewards).reshape(-1, G)
    by_group = (grouped - grouped.mean(1, keepdims=True)) / (grouped.std(1, keepdims=True) + 1e-8)
    assert advantages.tolist() == pytest.approx(by_group.reshape(-1).tolist(), abs=1e-6)
    assert grouped[2].tolist() == [1.0] * 4 and advantages[8:12].tolist() == [0.0] * 4, "an all-equal group: 0"
    batch_normalised = (np.asarray(rewards) - np.mean(rewards)) / np.std(rewards)
    assert not np.allclose(advantages.numpy(), batch_normalised, atol=1e-3)


# ---- the step's outcome ------------------------------------------------------------------------------------------


def test_outcomes_of_several_processes_add_counts_not_rates():
    config = GameConfig(civilians=2, rounds=1)
    first, second = fresh_games(1, config, seed=1), fresh_games(3, config, seed=2, first_index=1)
    hit = ScriptedPlayers(first, vote=lambda game, voter, g: [boxed(game.spy_seat)] * g)
    unsure = ScriptedPlayers(second, vote=lambda game, voter, g: [boxed("N/A")] * (g - 1) + ["garbage"])
    parts = [
        StepOutcome.of(play(first, Stage.DECISION, hit, num_samples=2, config=config)),
        StepOutcome.of(play(second, Stage.DECISION, unsure, num_samples=3, config=config)),
    ]
    outcome = StepOutcome.combine(parts)
    # 1 of 4 games identified; votes: 1 game x 2 voters x 2 + 3 games x 2 voters x 3 = 4 + 18 = 22.
    assert (outcome.games, outcome.identified, outcome.votes) == (4, 1, 22)
    assert outcome.accuracy == 0.25
    assert outcome.na_rate == pytest.approx(12 / 22) and outcome.invalid_vote_rate == pytest.approx(6 / 22)
    assert len(outcome.seat_rewards) == 4 * 3 and outcome.seat_roles.count(Role.SPY) == 4


# ---- iterative mode through real games ---------------------------------------------------------------------------


def paper_schedule(stats: list[tuple[float, float]], config: SchedulerConfig) -> str:
    """The paper's rule written out: the stage of each step, as a string of D and C.

    EMAs are bias-corrected, i.e. the rho-weighted mean of the values so far; a switch needs `min_dwell` steps in
    the stage; patience forces one after `patience` steps.
    """
    stage, dwell, stages = "D", 0, []
    for t in range(1, len(stats) + 1):
        stages.append(stage)
        dwell += 1
        weights = [config.ema_decay ** (t - i) for i in range(1, t + 1)]
        accuracy = sum(w * a for w, (a, _) in zip(weights, stats)) / sum(weights)
        na = sum(w * n for w, (_, n) in zip(weights, stats)) / sum(weights)
        if config.patience and dwell >= config.patience:
            switch = True
        elif dwell < config.min_dwell:
            switch = False
        elif stage == "D":
            switch = accuracy >= config.to_clue_acc and na <= config.to_clue_na
        else:
            switch = 1 - accuracy >= config.to_decision_err or na >= config.to_decision_na
        if switch:
            stage, dwell = ("C" if stage == "D" else "D"), 0
    return "".join(stages)


def drive(plan: list[tuple[int, int]], config: SchedulerConfig, games_per_step: int = 4) -> tuple[str, list]:
    """Play `plan` (per step: games whose civilians all vote for the spy, games whose civilians all say N/A; the
    rest vote for a civilian) with scripted players and the trainer's bookkeeping; the stages as D/C."""
    game_config = GameConfig(civilians=3, rounds=1)
    scheduler, baselines = StageScheduler(config), RoleBaselines(0.95)
    stages, history = [], []
    for step, (hits, unsure) in enumerate(plan):
        games = fresh_games(games_per_step, game_config, seed=step, first_index=step * games_per_step)
        fate = {
            game.pair_id: "hit" if i < hits else "na" if i < hits + unsure else "miss" for i, game in enumerate(games)
        }

        def vote(game, voter, g, fate=fate):
            other = next(seat for seat in game.civilian_seats if seat != voter)
            answer = {"hit": game.spy_seat, "na": "N/A", "miss": other}[fate[game.pair_id]]
            return [boxed(answer)] * g

        stage = scheduler.stage
        stages.append("D" if stage is Stage.DECISION else "C")
        trajectory = play(games, stage, ScriptedPlayers(games, vote=vote), num_samples=2, config=game_config,
                          baselines=baselines)  # fmt: skip
        outcome = StepOutcome.combine([StepOutcome.of(trajectory)])
        history.append((stage, outcome))
        advance(stage, outcome, scheduler, baselines)
    return "".join(stages), history


def test_iterative_mode_switches_both_ways_where_the_papers_rule_says():
    # 8 solved steps (all hits): DECISION -> CLUE after the 5-step dwell. Then the spy escapes every game: the
    # corrected error after steps 10, 11, 12 is 1.95/8.025 = .243, 2.853/8.624 = .331, 3.710/9.193 = .404, so the
    # clue stage gives way after step 12. Then half the votes are N/A: the decision stage never passes (N/A > 0.1).
    plan = [(4, 0)] * 8 + [(0, 0)] * 6 + [(2, 2)] * 10
    stats = [(hits / 4, unsure / 4) for hits, unsure in plan]
    stages, _ = drive(plan, SchedulerConfig())
    assert stages == paper_schedule(stats, SchedulerConfig())
    assert stages == "DDDDD" + "CCCCCCC" + "DDDDDDDDDDDD"


def test_voters_who_stay_unsure_send_the_clue_stage_back():
    # 5 games a step. After 5 solved steps, 4 of 5 games end in N/A votes (N/A rate .8, error .8 < .9 here): the
    # corrected N/A rate after step t is .8 (1 - .95^(t-5)) / (1 - .95^t): .451 at 10, .492 at 11, .525 at 12.
    config = SchedulerConfig(to_decision_err=0.9)
    plan = [(5, 0)] * 5 + [(1, 4)] * 10
    stages, _ = drive(plan, config, games_per_step=5)
    assert stages == paper_schedule([(hits / 5, unsure / 5) for hits, unsure in plan], config)
    assert stages == "DDDDD" + "CCCCCCC" + "DDD"


def test_patience_forces_switches_where_thresholds_never_would():
    # Accuracy 0.5 solves neither stage; with P = 6 and K_min = 5 the stages alternate every 6 steps... except
    # that the clue stage gives way by threshold (error 0.5 >= 0.4) as soon as its 5-step dwell is over.
    config = SchedulerConfig(patience=6)
    plan = [(2, 0)] * 24
    stages, history = drive(plan, config)
    assert stages == paper_schedule([(0.5, 0.0)] * 24, config)
    assert stages == "DDDDDD" + "CCCCC" + "DDDDDD" + "CCCCC" + "DD"
    assert drive(plan, SchedulerConfig())[0] == "D" * 24, "without patience the clue stage never comes"


def test_role_baselines_move_only_after_clue_steps_by_the_emas_of_role_means():
    plan = [(4, 0)] * 5 + [(0, 0)] * 3  # DDDDD then CCC: spies escape, so their clue rewards are positive
    _, history = drive(plan, SchedulerConfig())
    spy = civilian = 0.0
    for stage, outcome in history:
        if stage is Stage.CLUE:
            roles = np.asarray([role is Role.SPY for role in outcome.seat_roles])
            rewards = np.asarray(outcome.seat_rewards)
            spy = 0.95 * spy + 0.05 * rewards[roles].mean()
            civilian = 0.95 * civilian + 0.05 * rewards[~roles].mean()
    # Every civilian votes for one other civilian: the spy gets 0 votes; with 3 civilians voting each for another,
    # v_bar = 1 (per G), psi = -1, spy reward +0.1 in every game and step.
    assert spy == pytest.approx(0.1 * (1 - 0.95**3))
    baselines = RoleBaselines(0.95)
    scheduler = StageScheduler(SchedulerConfig())
    for stage, outcome in history:
        advance(stage, outcome, scheduler, baselines)
    assert baselines.updates == 3
    assert baselines.values[Role.SPY] == pytest.approx(spy) and baselines.values[Role.CIVILIAN] == pytest.approx(
        civilian
    )
