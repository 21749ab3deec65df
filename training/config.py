"""Options of the game, the rewards, the stage scheduler and the loss, each checked by `validate()`.

Defaults are the paper's (`reference/method.md`); the release's variants are options, off by default.
"""

from __future__ import annotations

from dataclasses import dataclass

from datagen.errors import ConfigError

VOTERS = ("civilians", "judge")
FIXED_PREFIX = "fixed:"
SCHEDULE_MODES = ("iterative", "fixed:L", "clue-only", "decision-only")
AGGREGATIONS = ("sequence", "token")


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number from 0 to 1, got {value!r}")


def _check_decay(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1) (an EMA decay), got {value!r}")


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0.0:
        raise ConfigError(f"{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class GameConfig:
    """How one game is set up: players, rounds, spy-image noise, speaking order and who votes."""

    civilians: int = 4
    """Civilian players; the game has `civilians + 1` players (paper: 4, release: 3)."""
    rounds: int = 2
    """Clue rounds before the vote (paper: 2)."""
    blank_spy_rate: float = 0.0
    """Fraction of games whose spy sees a blank (white) image instead of the spy image (noise study)."""
    identical_spy_rate: float = 0.0
    """Fraction of games whose spy sees the civilian image itself (noise study)."""
    shuffle_order: bool = True
    """Shuffle the speaking order every round (the release always speaks 1..N)."""
    voters: str = "civilians"
    """`civilians`: every civilian votes (paper); `judge`: one judge prompt sees all clues (release)."""

    @property
    def players(self) -> int:
        """Players per game, the spy included."""
        return self.civilians + 1

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value and what is allowed."""
        _check_count("game civilians", self.civilians, 2)
        _check_count("game rounds", self.rounds, 1)
        _check_fraction("game blank_spy_rate", self.blank_spy_rate)
        _check_fraction("game identical_spy_rate", self.identical_spy_rate)
        if self.blank_spy_rate + self.identical_spy_rate > 1.0:
            raise ConfigError(
                f"game blank_spy_rate + identical_spy_rate must be at most 1, got "
                f"{self.blank_spy_rate} + {self.identical_spy_rate}"
            )
        if self.voters not in VOTERS:
            raise ConfigError(f"game voters must be one of {', '.join(VOTERS)}, got {self.voters!r}")


@dataclass(frozen=True)
class RewardConfig:
    """Reward constants of both stages and the role baselines' decay."""

    beta: float = 0.1
    """Weight of the suspicion gap in clue rewards (paper: 0.1)."""
    lam: float = 0.1
    """Weight of a civilian's own excess votes in its clue reward (paper: 0.1)."""
    baseline_decay: float = 0.95
    """EMA decay of the per-role baselines (paper: 0.95, release: 0.9)."""
    correct: float = 1.0
    """Decision reward of a vote for the spy."""
    na: float = -0.5
    """Decision reward of an N/A ("not sure") vote."""
    wrong: float = -1.0
    """Decision reward of a vote for a civilian or an unparsable vote."""
    release_shaping: bool = False
    """Add the release's shaping to decision rewards: x1.2 accuracy, +-0.3 format, +0.99 when correct."""

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value and what is allowed."""
        _check_non_negative("reward beta", self.beta)
        _check_non_negative("reward lam", self.lam)
        _check_decay("reward baseline_decay", self.baseline_decay)
        for name in ("correct", "na", "wrong"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"reward {name} must be a number, got {value!r}")
        if not self.correct > self.na >= self.wrong:
            raise ConfigError(
                f"rewards must order correct > na >= wrong, got correct={self.correct}, na={self.na}, "
                f"wrong={self.wrong}"
            )


@dataclass(frozen=True)
class SchedulerConfig:
    """When Iterative-SPO switches between the clue and the decision stage."""

    mode: str = "iterative"
    """`iterative` (thresholds on EMAs, paper), `fixed:L` (switch every L steps), `clue-only` or `decision-only`."""
    ema_decay: float = 0.95
    """Decay rho of the EMAs of accuracy and N/A rate (paper: 0.95)."""
    to_clue_acc: float = 0.9
    """DECISION -> CLUE needs EMA(accuracy) at least this."""
    to_clue_na: float = 0.1
    """DECISION -> CLUE needs EMA(N/A rate) at most this."""
    to_decision_err: float = 0.4
    """CLUE -> DECISION when 1 - EMA(accuracy) is at least this ..."""
    to_decision_na: float = 0.5
    """... or EMA(N/A rate) is at least this."""
    min_dwell: int = 5
    """Steps a stage lasts at least before a threshold switch (paper: K_min = 5)."""
    patience: int = 0
    """Force a switch after this many steps in one stage; 0 = never (the paper's unused P = 20)."""

    @property
    def fixed_interval(self) -> int | None:
        """L of a `fixed:L` mode, else None."""
        if not self.mode.startswith(FIXED_PREFIX):
            return None
        return int(self.mode[len(FIXED_PREFIX) :])

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value and what is allowed."""
        if not isinstance(self.mode, str):
            raise ConfigError(f"scheduler mode must be one of {', '.join(SCHEDULE_MODES)}, got {self.mode!r}")
        if self.mode.startswith(FIXED_PREFIX):
            interval = self.mode[len(FIXED_PREFIX) :]
            if not interval.isdigit() or int(interval) < 1:
                raise ConfigError(f"scheduler mode {self.mode!r}: fixed:L needs a whole number of steps L >= 1")
        elif self.mode not in SCHEDULE_MODES:
            raise ConfigError(f"scheduler mode must be one of {', '.join(SCHEDULE_MODES)}, got {self.mode!r}")
        _check_decay("scheduler ema_decay", self.ema_decay)
        for name in ("to_clue_acc", "to_clue_na", "to_decision_err", "to_decision_na"):
            _check_fraction(f"scheduler {name}", getattr(self, name))
        _check_count("scheduler min_dwell", self.min_dwell, 1)
        _check_count("scheduler patience", self.patience, 0)
        if 0 < self.patience < self.min_dwell:
            raise ConfigError(
                f"scheduler patience ({self.patience}) must be 0 (off) or at least min_dwell ({self.min_dwell})"
            )


@dataclass(frozen=True)
class LossConfig:
    """The GRPO-style policy loss: PPO clipping and the KL weight to the frozen reference."""

    clip_eps: float = 0.2
    """PPO clip range epsilon: the ratio is clipped to [1 - eps, 1 + eps]."""
    kl_coef: float = 0.04
    """Weight tau of the k3 KL to the reference model, in both stages (paper: 0.04); 0 needs no reference."""
    aggregation: str = "sequence"
    """`sequence`: mean over each completion's tokens, then over completions (GRPO); `token`: over all tokens."""
    exclude_truncated: bool = False
    """Give no gradient to completions cut off at `max_new_tokens` (DAPO's overlong filtering). Off, as in the
    paper: a cut-off reply has no final `\\boxed{}`, is scored as a format failure, and so teaches brevity."""

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value and what is allowed."""
        if isinstance(self.clip_eps, bool) or not isinstance(self.clip_eps, int | float) or not 0 < self.clip_eps < 1:
            raise ConfigError(f"loss clip_eps must be a number in (0, 1), got {self.clip_eps!r}")
        _check_non_negative("loss kl_coef", self.kl_coef)
        if not isinstance(self.exclude_truncated, bool):
            raise ConfigError(f"loss exclude_truncated must be true or false, got {self.exclude_truncated!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"loss aggregation must be one of {', '.join(AGGREGATIONS)}, got {self.aggregation!r}")
