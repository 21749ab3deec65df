"""Rewards of both stages, the role-advantage baselines, group normalisation and the per-step statistics.

Seats are 1-based; every per-seat list is in seat order (`counts[k - 1]` belongs to seat k).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from training.config import RewardConfig
from training.game import Role
from training.parsing import Vote

RELEASE_ACCURACY_SCALE = 1.2
RELEASE_FORMAT_BONUS = 0.3
RELEASE_CORRECT_BONUS = 0.99
GROUP_STD_EPS = 1e-8


def vote_counts(votes: Sequence[Vote], num_players: int) -> list[int]:
    """Votes received per seat; N/A and invalid votes count for nobody."""
    counts = [0] * num_players
    for vote in votes:
        if vote.seat is None:
            continue
        if not 1 <= vote.seat <= num_players:
            raise ValueError(f"vote for seat {vote.seat} in a game of {num_players} players")
        counts[vote.seat - 1] += 1
    return counts


def clue_rewards(
    votes: Sequence[Vote], spy_seat: int, num_players: int, config: RewardConfig, *, samples_per_voter: int = 1
) -> list[float]:
    """Zero-sum clue-stage reward per seat from the decision stage's votes on that game.

    With `v` the votes per seat, `v_c` its mean over civilians and `psi = v_spy - v_c`: the spy gets
    `-beta * psi`, civilian j gets `beta / n_c * psi - lam * (v_j - v_c)`; the rewards sum to zero.
    Pass every vote of the game; when each voter's vote was sampled several times, `samples_per_voter`
    divides the counts, so that the reward keeps the scale of one vote per voter.
    """
    if not 1 <= spy_seat <= num_players:
        raise ValueError(f"spy seat {spy_seat} outside 1..{num_players}")
    if samples_per_voter < 1:
        raise ValueError(f"samples_per_voter must be >= 1, got {samples_per_voter}")
    counts = np.asarray(vote_counts(votes, num_players), dtype=np.float64) / samples_per_voter
    civilians = [seat for seat in range(1, num_players + 1) if seat != spy_seat]
    civilian_mean = float(np.mean(counts[[seat - 1 for seat in civilians]]))
    suspicion_gap = float(counts[spy_seat - 1]) - civilian_mean
    rewards = [0.0] * num_players
    rewards[spy_seat - 1] = -config.beta * suspicion_gap
    for seat in civilians:
        rewards[seat - 1] = config.beta / len(civilians) * suspicion_gap - config.lam * (
            float(counts[seat - 1]) - civilian_mean
        )
    return rewards


def decision_rewards(votes: Sequence[Vote], spy_seat: int, config: RewardConfig) -> list[float]:
    """Verifiable reward per vote: `correct` for the spy, `na` for N/A, `wrong` for a civilian or invalid vote.

    With `config.release_shaping` the release's reward instead: 1.2 x that accuracy reward, +0.3 for a valid
    format (-0.3 otherwise), and +0.99 more when correct.
    """
    rewards = []
    for vote in votes:
        correct = vote.seat == spy_seat
        base = config.correct if correct else config.na if vote.na else config.wrong
        if config.release_shaping:
            base = (
                RELEASE_ACCURACY_SCALE * base
                + (RELEASE_FORMAT_BONUS if vote.valid else -RELEASE_FORMAT_BONUS)
                + (RELEASE_CORRECT_BONUS if correct else 0.0)
            )
        rewards.append(float(base))
    return rewards


def group_advantages(rewards: Sequence[float], group_size: int) -> list[float]:
    """`(r - mean) / (std + 1e-8)` within each run of `group_size` consecutive rewards (G samples of one prompt).

    The std is the population std (ddof 0), so a group of equal rewards, or of one sample, gives zeros.
    """
    if group_size < 1 or len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    grouped = np.asarray(rewards, dtype=np.float64).reshape(-1, group_size)  # [n / G, G]
    centred = grouped - grouped.mean(axis=1, keepdims=True)
    return (centred / (grouped.std(axis=1, keepdims=True) + GROUP_STD_EPS)).reshape(-1).tolist()


class RoleBaselines:
    """Role Advantage Estimation: an EMA baseline of clue rewards per role, `A = r - b_role`.

    Zero-sum rewards make the spy's typical reward differ from the civilians' by the game's imbalance, not by
    the quality of a clue; subtracting a per-role baseline removes it. Call `advantages` before `update` in a
    clue step (Alg. 1), and update only in clue steps. Baselines start at 0 and travel in checkpoints.
    """

    def __init__(self, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"baseline decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.values = {Role.CIVILIAN: 0.0, Role.SPY: 0.0}
        self.updates = 0

    def advantages(self, rewards: Sequence[float], roles: Sequence[Role]) -> list[float]:
        """`r - b_role` for each reward, with the current baselines."""
        _check_lengths(rewards, roles)
        return [float(r) - self.values[Role(role)] for r, role in zip(rewards, roles)]

    def update(self, rewards: Sequence[float], roles: Sequence[Role]) -> None:
        """Move each role's baseline towards the mean of that role's rewards in this step: b = a*b + (1-a)*mean."""
        _check_lengths(rewards, roles)
        for role in Role:
            own = [float(r) for r, each in zip(rewards, roles) if Role(each) is role]
            if own:
                self.values[role] = self.decay * self.values[role] + (1.0 - self.decay) * float(np.mean(own))
        self.updates += 1

    def state_dict(self) -> dict[str, float | int]:
        """Plain numbers, for the checkpoint."""
        return {
            "decay": self.decay,
            "civilian": self.values[Role.CIVILIAN],
            "spy": self.values[Role.SPY],
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, float | int]) -> None:
        """Restore what `state_dict` returned; the decay is the constructor's (the config's) own."""
        self.values = {Role.CIVILIAN: float(state["civilian"]), Role.SPY: float(state["spy"])}
        self.updates = int(state["updates"])


def spy_identified(votes: Sequence[Vote], spy_seat: int, num_players: int) -> bool:
    """Whether the arg-max over {each seat, N/A} of `votes` is the spy: the spy got more votes than every other
    seat and than N/A; a tie is a miss, and invalid votes count for nothing (paper's acc_t)."""
    counts = vote_counts(votes, num_players)
    spy_votes = counts[spy_seat - 1]
    others = [count for seat, count in enumerate(counts, 1) if seat != spy_seat]
    return spy_votes > max(others, default=0) and spy_votes > sum(vote.na for vote in votes)


def game_accuracy(games_votes: Sequence[Sequence[Vote]], spy_seats: Sequence[int], num_players: int) -> float:
    """acc_t: fraction of games whose votes identify the spy (`spy_identified`)."""
    if len(games_votes) != len(spy_seats) or not spy_seats:
        raise ValueError(f"need one spy seat per game and at least one game, got {len(games_votes)} / {len(spy_seats)}")
    hits = [spy_identified(votes, spy, num_players) for votes, spy in zip(games_votes, spy_seats)]
    return float(np.mean(hits))


def na_rate(votes: Sequence[Vote]) -> float:
    """na_t: fraction of votes that are N/A (invalid votes are not N/A)."""
    if not votes:
        raise ValueError("na_rate of no votes")
    return sum(vote.na for vote in votes) / len(votes)


def _check_lengths(rewards: Sequence[float], roles: Sequence[Role]) -> None:
    if len(rewards) != len(roles):
        raise ValueError(f"{len(rewards)} rewards but {len(roles)} roles")
