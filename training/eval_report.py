"""The outputs of `vzero eval`: `eval.json` (every number, every game and answer) and `eval.md` (the table).

Models and data are named by `model_label` (a Hub id, or a folder's name): no path of this machine is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from datagen.files import atomic_write_text
from datagen.loading import public_name
from training.eval_stats import GAME_METRICS, QA_METRIC, Estimate, Summary
from training.evaluation import EvalOptions, EvalRun

EVAL_JSON = "eval.json"
EVAL_TABLE = "eval.md"
METRIC_NAMES = {
    "accuracy": "spy identified (civilians' arg-max vote)",
    "na_rate": "N/A votes",
    "valid_vote_rate": "valid votes",
    "valid_clue_rate": "valid clues",
    "clue_words": "words per clue",
    QA_METRIC: '"what changed?" accuracy',
}
METRICS = (*GAME_METRICS, QA_METRIC)


def _estimate(estimate: Estimate) -> dict[str, Any]:
    """An estimate as JSON (an interval that could not be computed is null, not NaN)."""
    values = dataclasses.asdict(estimate)
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in values.items()}


def report(options: EvalOptions, run: EvalRun, summary: Summary) -> dict[str, Any]:
    """The content of `eval.json`."""
    return {
        "models": run.labels,
        "data": public_name(options.data),
        "config": options.config,
        "games": len({row.pair_id for row in run.games}),
        "seed": options.seed,
        "recipe": options.recipe.to_dict(),
        "skipped_pairs": run.skipped_pairs,
        "metrics": {
            group: {
                label: {name: _estimate(value) for name, value in values.items()} for label, values in models.items()
            }
            for group, models in summary.metrics.items()
        },
        "differences": {
            group: {name: _estimate(value) for name, value in values.items()}
            for group, values in summary.differences.items()
        },
        "per_game": [dataclasses.asdict(row) for row in run.games],
        "per_question": [dataclasses.asdict(row) for row in run.questions],
    }


def cell(estimate: Estimate | None, *, signed: bool = False) -> str:
    """'0.625 [0.500, 0.750]'; '—' when not measured."""
    if estimate is None:
        return "—"
    number = "{:+.3f}" if signed else "{:.3f}"
    return f"{number.format(estimate.value)} [{number.format(estimate.low)}, {number.format(estimate.high)}]"


def table_rows(labels: list[str], summary: Summary) -> list[list[str]]:
    """One row per (group, metric): the group, the metric, each model's estimate, and the difference if any."""
    rows = []
    for group, models in summary.metrics.items():
        for metric in METRICS:
            values = [models.get(label, {}).get(metric) for label in labels]
            if all(value is None for value in values):
                continue
            n = next(value.n for value in values if value is not None)
            row = [group, f"{METRIC_NAMES[metric]} (n={n})", *(cell(value) for value in values)]
            if len(labels) == 2:
                row.append(cell(summary.differences.get(group, {}).get(metric), signed=True))
            rows.append(row)
    return rows


def header(labels: list[str]) -> list[str]:
    """Column titles of the table."""
    return ["group", "metric", *labels, *([f"{labels[1]} − {labels[0]}"] if len(labels) == 2 else [])]


def markdown(options: EvalOptions, run: EvalRun, summary: Summary) -> str:
    """`eval.md`: what was evaluated and the side-by-side table with 95% intervals."""
    title = " vs ".join(run.labels)
    lines = [
        f"# Evaluation: {title}",
        "",
        f"{len({row.pair_id for row in run.games})} games on `{public_name(options.data)}` (seed {options.seed}); "
        "values with 95% bootstrap intervals over games (n = games, or pairs for the questions); the last column is "
        "the paired difference.",
        "",
        "| " + " | ".join(header(run.labels)) + " |",
        "|" + "---|" * len(header(run.labels)),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(run.labels, summary)]
    return "\n".join(lines) + "\n"


def write_report(out: Path, options: EvalOptions, run: EvalRun, summary: Summary) -> Path:
    """Write `eval.json` and `eval.md` into `out`; returns `out / eval.json`."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / EVAL_TABLE, markdown(options, run, summary))
    atomic_write_text(out / EVAL_JSON, json.dumps(report(options, run, summary), indent=2) + "\n")
    return out / EVAL_JSON
