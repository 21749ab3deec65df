"""The bookkeeping of one Iterative-SPO step: the step's outcome over every process's games, and what it moves.

Algorithm 1 of the paper, after the policy update: the role baselines (RAE) take the clue rewards of a clue
step, and the stage scheduler takes the step's accuracy and N/A rate. Every process computes this from the same
gathered outcome, so all processes keep the same stage and baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from training.game import Role
from training.rewards import RoleBaselines
from training.scheduler import Stage, StageScheduler
from training.selfplay import Trajectory


@dataclass(frozen=True)
class StepOutcome:
    """What a step's games feed into the stage scheduler and the role baselines: counts that add up over processes."""

    games: int
    identified: int
    """Games whose votes identified the spy."""
    votes: int
    na_votes: int
    invalid_votes: int
    seat_rewards: tuple[float, ...]
    """Clue reward of every seat of every game."""
    seat_roles: tuple[Role, ...]
    """The role of each of `seat_rewards`."""

    @classmethod
    def of(cls, trajectory: Trajectory) -> StepOutcome:
        """The outcome of one process's games."""
        stats = trajectory.stats
        return cls(
            games=stats.games,
            identified=stats.identified,
            votes=stats.votes,
            na_votes=stats.na_votes,
            invalid_votes=stats.invalid_votes,
            seat_rewards=tuple(trajectory.seat_rewards),
            seat_roles=tuple(trajectory.seat_roles),
        )

    @classmethod
    def combine(cls, parts: Sequence[StepOutcome]) -> StepOutcome:
        """The outcome of all processes' games together (parts in process order)."""
        return cls(
            games=sum(part.games for part in parts),
            identified=sum(part.identified for part in parts),
            votes=sum(part.votes for part in parts),
            na_votes=sum(part.na_votes for part in parts),
            invalid_votes=sum(part.invalid_votes for part in parts),
            seat_rewards=tuple(reward for part in parts for reward in part.seat_rewards),
            seat_roles=tuple(role for part in parts for role in part.seat_roles),
        )

    @property
    def accuracy(self) -> float:
        """acc_t: fraction of games whose votes identified the spy."""
        return self.identified / self.games

    @property
    def na_rate(self) -> float:
        """na_t: fraction of votes that were N/A."""
        return self.na_votes / self.votes

    @property
    def invalid_vote_rate(self) -> float:
        """Fraction of votes that did not parse (neither a hit, a miss nor N/A)."""
        return self.invalid_votes / self.votes


def advance(stage: Stage, outcome: StepOutcome, scheduler: StageScheduler, baselines: RoleBaselines) -> Stage:
    """Fold a finished step of `stage` into the baselines (clue steps only) and the scheduler; the next stage."""
    if stage is Stage.CLUE:
        baselines.update(outcome.seat_rewards, outcome.seat_roles)
    return scheduler.update(outcome.accuracy, outcome.na_rate)
