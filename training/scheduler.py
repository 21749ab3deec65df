"""Iterative-SPO's stage scheduler: which stage (clue or decision) trains next, from accuracy and N/A EMAs.

Both EMAs start at 0 and are bias-corrected (divided by `1 - rho^t`), so that the thresholds mean the same
after 5 steps as after 500; raw and corrected values are both logged. Switching happens only after
`min_dwell` steps in a stage; `patience` (if set) forces a switch after that many steps in one stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from training.config import SchedulerConfig


class Stage(StrEnum):
    """The stage whose outputs get gradient; the other is played without gradient to supply its data."""

    CLUE = "clue"
    DECISION = "decision"


class StageScheduler:
    """Call `update` once per training step with that step's statistics; `stage` is the next step's stage."""

    def __init__(self, config: SchedulerConfig) -> None:
        config.validate()
        self.config = config
        self.stage = Stage.CLUE if config.mode == "clue-only" else Stage.DECISION
        self.steps = 0
        self.dwell = 0
        self.switches = 0
        self.last_reason = ""
        self.ema_accuracy = 0.0
        self.ema_na = 0.0

    def _corrected(self, raw: float) -> float:
        if self.steps == 0:
            return 0.0
        return raw / (1.0 - self.config.ema_decay**self.steps)

    @property
    def accuracy(self) -> float:
        """Bias-corrected EMA of accuracy (0 before the first update)."""
        return self._corrected(self.ema_accuracy)

    @property
    def na_rate(self) -> float:
        """Bias-corrected EMA of the N/A rate (0 before the first update)."""
        return self._corrected(self.ema_na)

    def update(self, accuracy: float, na_rate: float) -> Stage:
        """Fold in one finished step's statistics (each in [0, 1]) and return the stage of the next step."""
        for name, value in (("accuracy", accuracy), ("na_rate", na_rate)):
            if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"scheduler {name} must be a number in [0, 1], got {value!r}")
        rho = self.config.ema_decay
        self.ema_accuracy = rho * self.ema_accuracy + (1.0 - rho) * accuracy
        self.ema_na = rho * self.ema_na + (1.0 - rho) * na_rate
        self.steps += 1
        self.dwell += 1
        reason = self._switch_reason()
        if reason:
            self.stage = Stage.CLUE if self.stage is Stage.DECISION else Stage.DECISION
            self.dwell = 0
            self.switches += 1
            self.last_reason = reason
        return self.stage

    def _switch_reason(self) -> str:
        """Why the stage should switch now, or '' to stay."""
        mode = self.config.mode
        if mode in ("clue-only", "decision-only"):
            return ""
        interval = self.config.fixed_interval
        if interval is not None:
            return f"fixed interval of {interval} step(s)" if self.dwell >= interval else ""
        if self.config.patience and self.dwell >= self.config.patience:
            return f"patience: {self.dwell} steps in {self.stage.value}"
        if self.dwell < self.config.min_dwell:
            return ""
        if self.stage is Stage.DECISION:
            if self.accuracy >= self.config.to_clue_acc and self.na_rate <= self.config.to_clue_na:
                return f"decision solved: accuracy {self.accuracy:.3f}, N/A {self.na_rate:.3f}"
            return ""
        if 1.0 - self.accuracy >= self.config.to_decision_err:
            return f"clues too hard: error {1.0 - self.accuracy:.3f}"
        if self.na_rate >= self.config.to_decision_na:
            return f"voters unsure: N/A {self.na_rate:.3f}"
        return ""

    def stats(self) -> dict[str, float | int | str]:
        """What to log each step: the stage, dwell, raw and bias-corrected EMAs, switches so far."""
        return {
            "stage": self.stage.value,
            "dwell": self.dwell,
            "steps": self.steps,
            "switches": self.switches,
            "ema_accuracy_raw": self.ema_accuracy,
            "ema_na_raw": self.ema_na,
            "ema_accuracy": self.accuracy,
            "ema_na": self.na_rate,
            "last_switch_reason": self.last_reason,
        }

    def state_dict(self) -> dict[str, Any]:
        """Plain values for the checkpoint; the config is not included (it comes from the run's config)."""
        return {
            "stage": self.stage.value,
            "steps": self.steps,
            "dwell": self.dwell,
            "switches": self.switches,
            "last_reason": self.last_reason,
            "ema_accuracy": self.ema_accuracy,
            "ema_na": self.ema_na,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.stage = Stage(state["stage"])
        self.steps = int(state["steps"])
        self.dwell = int(state["dwell"])
        self.switches = int(state["switches"])
        self.last_reason = str(state["last_reason"])
        self.ema_accuracy = float(state["ema_accuracy"])
        self.ema_na = float(state["ema_na"])
