"""The statistics of `vzero eval`: each metric per group of games, with a 95% interval, and paired differences.

Every metric is a ratio of sums over games (accuracy = identified games / games, N/A rate = N/A votes / votes, ...),
so its interval comes from a cluster bootstrap: games are resampled with replacement (a game's votes and clues stay
together) and the ratio recomputed. A difference between two models resamples the same games for both (paired),
which is what makes a small improvement on the same games measurable. Intervals are the 2.5th and 97.5th
percentiles of `RESAMPLES` resamples drawn from a generator seeded by the evaluation's seed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2000
CHUNK = 250
"""Resamples drawn at once (a `[CHUNK, n]` weight matrix)."""
DIFFICULTY_BINS = (("easy", 0.0, 1 / 3), ("medium", 1 / 3, 2 / 3), ("hard", 2 / 3, float("inf")))
"""Difficulty bins by the pair's `difficulty` (0 easy .. 1 hard), lower bound included."""
GAME_METRICS = {
    "accuracy": ("identified", None),
    "na_rate": ("na_votes", "votes"),
    "valid_vote_rate": ("valid_votes", "votes"),
    "valid_clue_rate": ("valid_clues", "clue_turns"),
    "clue_words": ("clue_words", "valid_clues"),
}
"""Per game metric: (numerator field, denominator field; None: one per game)."""
QA_METRIC = "qa_accuracy"


@dataclass(frozen=True)
class Estimate:
    """A metric's value with its 95% interval, over `n` clusters (games, or pairs for questions)."""

    value: float
    low: float
    high: float
    n: int


def difficulty_bin(difficulty: float) -> str:
    """The bin name of a pair's difficulty."""
    return next(name for name, low, high in DIFFICULTY_BINS if low <= difficulty < high)


def group_names(row: Any) -> list[str]:
    """The groups a game or question row counts in: all, its domain and its difficulty bin."""
    return ["all", f"domain={row.domain}", f"difficulty={difficulty_bin(row.difficulty)}"]


def bootstrap_ratio(
    numerators: Sequence[np.ndarray], denominators: Sequence[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """`[RESAMPLES, K]` ratios sum(num_k) / sum(den_k) over clusters resampled with replacement, the same resample for
    every k (K aligned series of n clusters each: one per model). A resample with a zero denominator gives NaN."""
    num, den = np.stack(numerators, axis=1).astype(float), np.stack(denominators, axis=1).astype(float)  # [n, K]
    n = num.shape[0]
    out = []
    for start in range(0, RESAMPLES, CHUNK):
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=min(CHUNK, RESAMPLES - start)).astype(float)  # [B, n]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((weights @ num) / (weights @ den))  # [B, K]
    return np.concatenate(out)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def estimates(
    numerators: Sequence[np.ndarray], denominators: Sequence[np.ndarray], rng: np.random.Generator
) -> tuple[list[Estimate | None], Estimate | None]:
    """Per series its estimate (None where its denominator is 0); for two series, the paired difference 2nd - 1st."""
    samples = bootstrap_ratio(numerators, denominators, rng)
    singles: list[Estimate | None] = []
    for k, (num, den) in enumerate(zip(numerators, denominators, strict=True)):
        total = float(np.sum(den))
        singles.append(
            None if total == 0 else Estimate(float(np.sum(num)) / total, *_interval(samples[:, k]), len(den))
        )
    difference = None
    if len(singles) == 2 and all(single is not None for single in singles):
        value = singles[1].value - singles[0].value
        difference = Estimate(value, *_interval(samples[:, 1] - samples[:, 0]), len(numerators[0]))
    return singles, difference


@dataclass(frozen=True)
class Summary:
    """All metrics of all groups: `metrics[group][model][metric]`, `differences[group][metric]` (2nd - 1st model)."""

    metrics: dict[str, dict[str, dict[str, Estimate]]]
    differences: dict[str, dict[str, Estimate]]


def _cluster_series(
    rows: Sequence[Any], labels: Sequence[str], key: Callable[[Any], str], value: Callable[[Any], tuple[float, float]]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per model, aligned arrays of per-cluster (numerator, denominator) sums; clusters ordered by key."""
    keys = sorted({key(row) for row in rows})
    position = {cluster: i for i, cluster in enumerate(keys)}
    numerators = [np.zeros(len(keys)) for _ in labels]
    denominators = [np.zeros(len(keys)) for _ in labels]
    for row in rows:
        k = labels.index(row.model)
        num, den = value(row)
        numerators[k][position[key(row)]] += num
        denominators[k][position[key(row)]] += den
    return numerators, denominators


def summarize(labels: Sequence[str], games: Sequence[Any], questions: Sequence[Any], seed: int) -> Summary:
    """Every metric for every group, each model, and the paired difference when there are two models."""
    metrics: dict[str, dict[str, dict[str, Estimate]]] = {}
    differences: dict[str, dict[str, Estimate]] = {}
    series = {
        name: (games, lambda row, n=num, d=den: (getattr(row, n), getattr(row, d) if d else 1))
        for name, (num, den) in GAME_METRICS.items()
    }
    series[QA_METRIC] = (questions, lambda row: (row.correct, 1))
    groups = sorted({group for row in [*games, *questions] for group in group_names(row)}, key=_group_order)
    for group in groups:
        for metric, (rows, value) in series.items():
            chosen = [row for row in rows if group in group_names(row)]
            if not chosen:
                continue
            numerators, denominators = _cluster_series(chosen, labels, lambda row: row.pair_id, value)
            rng = np.random.default_rng([seed, zlib.crc32(f"{group}/{metric}".encode())])
            singles, difference = estimates(numerators, denominators, rng)
            for label, single in zip(labels, singles, strict=True):
                if single is not None:
                    metrics.setdefault(group, {}).setdefault(label, {})[metric] = single
            if difference is not None:
                differences.setdefault(group, {})[metric] = difference
    return Summary(metrics, differences)


def _group_order(group: str) -> tuple[int, int, str]:
    """all, then domains by name, then difficulty bins easy to hard."""
    if group == "all":
        return 0, 0, ""
    kind, _, name = group.partition("=")
    if kind == "domain":
        return 1, 0, name
    return 2, [bin_name for bin_name, _, _ in DIFFICULTY_BINS].index(name), name
