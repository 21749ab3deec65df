"""`vzero qa`: a "what changed?" question dataset made from a pair dataset, in the same Hub layout (`QA_FEATURES`).

    OUT/data/<domain>/train-00000-of-00001.parquet   questions about that domain's pairs, images embedded
    OUT/README.md                                    card: configs (`all` and one per domain), features, counts

Every answer is computed from the pair's `edits`, `meta`, `diff_boxes` and mask (`datagen.qa`), and the pair's
own PNG bytes are reused, so the questions are as exact as the pairs. The folder is written under a temporary
name and renamed when complete.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from datasets import Image as ImageFeature

from datagen.card import table
from datagen.configs import ALL_CONFIG, dataset_configs, domain_folder
from datagen.errors import ConfigError, DatasetError
from datagen.features import QA_FEATURES
from datagen.files import atomic_write_text, staged_folder
from datagen.layout import CARD_NAME
from datagen.loading import load_pairs, public_name
from datagen.merge import DOMAIN_NAME
from datagen.qa import KINDS, Question, domain_questions, make_questions, pair_facts, pair_rng
from datagen.shards import plan_shards, write_shard

QA_SHARD_SIZE = 500
IMAGE_COLUMNS = ("civilian", "spy", "diff_mask")


@dataclass(frozen=True)
class QASummary:
    """What `build_qa_dataset` wrote."""

    out: Path
    pairs: int
    counts: dict[str, Counter]
    """Questions per kind, by domain."""
    without_domain_questions: tuple[str, ...]
    """Domains with no installed `DomainQuestions` (only `which_image` and `grounding` for them)."""


def build_qa_dataset(
    source: str | Path, out: Path, *, seed: int = 0, config: str | None = None, command: str = ""
) -> QASummary:
    """Write the questions about every pair of `source` (a dataset folder or Hub id) to the folder `out`.

    Raises:
        ConfigError: `out` exists and is not empty (checked before any work).
        DatasetError: `source` is not a pair dataset, has no pairs, or has a domain that cannot name a folder.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not an empty folder; choose a new one")
    pairs = load_pairs(source, config=config)
    if len(pairs) == 0:
        raise DatasetError(f"{source} has no pairs to ask about")
    for column in IMAGE_COLUMNS:
        pairs = pairs.cast_column(column, ImageFeature(decode=False))
    makers = domain_questions()
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in pairs:
        facts = pair_facts(record)
        if not DOMAIN_NAME.match(facts.domain) or facts.domain == ALL_CONFIG:
            raise DatasetError(f"{source}: pair {facts.pair_id}'s domain {facts.domain!r} cannot name a folder")
        for question in make_questions(facts, pair_rng(seed, facts.pair_id), makers.get(facts.domain)):
            rows[facts.domain].append(question_row(question, record))
    counts = {domain: Counter(row["kind"] for row in domain_rows) for domain, domain_rows in sorted(rows.items())}
    summary = QASummary(out, len(pairs), counts, tuple(sorted(set(rows) - set(makers))))
    with staged_folder(out) as staging:
        for domain, domain_rows in rows.items():
            folder = staging / domain_folder(domain)
            folder.mkdir(parents=True)
            for plan in plan_shards(len(domain_rows), QA_SHARD_SIZE):
                write_shard(domain_rows[plan.start : plan.stop], folder / plan.name, QA_FEATURES)
        card = card_text(staging, summary, name=out.name, source=source, command=command)
        atomic_write_text(staging / CARD_NAME, card)
    return summary


def question_row(question: Question, record: dict[str, Any]) -> dict[str, Any]:
    """The row of `QA_FEATURES` of one question, with the pair's own PNG bytes as its images."""
    pair_id = str(record["id"])
    return {
        "id": f"{pair_id}-{question.kind}",
        "pair_id": pair_id,
        "domain": record["domain"],
        "kind": question.kind,
        "images": [{"bytes": record[name]["bytes"], "path": None} for name in question.images],
        "question": question.question,
        "choices": list(question.choices),
        "answer": question.answer,
        "edit_index": question.edit_index,
    }


def card_text(folder: Path, summary: QASummary, *, name: str, source: str | Path, command: str) -> str:
    """The dataset card: Hub YAML (configs and features), counts per domain and kind, how answers are made."""
    configs = dataset_configs(folder)
    metadata = {
        "license": "cc-by-4.0",
        "task_categories": ["visual-question-answering", "image-text-to-text"],
        "tags": ["vision-zero", "spot-the-difference", "rlvr", "multiple-choice", *summary.counts],
        "configs": [
            {
                "config_name": config.name,
                "data_files": [{"split": "train", "path": config.pattern}],
                **({"default": True} if config.default and len(configs) > 1 else {}),
            }
            for config in configs
        ],
        "dataset_info": [{"config_name": config.name, "features": QA_FEATURES._to_yaml_list()} for config in configs],
    }
    rows = [(domain, kind, counts[kind]) for domain, counts in summary.counts.items() for kind in KINDS]
    sections = [
        "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---",
        f"# {name}",
        f'"What changed?" questions about the {summary.pairs} spot-the-difference pairs of `{public_name(source)}`. '
        "Every answer comes from the pairs' ground truth (`edits`, `meta`, `diff_boxes`, the mask), never from a "
        "model, and is exactly one of `choices`: exact match is a verifiable reward (RLVR), or an accuracy.",
        table(("domain", "kind", "questions"), rows),
        "Kinds: `which_image` (which of two images was edited, given the description), `which_target` (which "
        "object, category, series or region changed), `before_after` (what it was before and after, distractors "
        "from the domain's vocabulary), `grounding` (which box holds a change). `images` are in the order the "
        "question names them; `edit_index` is the entry of the pair's `edits` a question is about (-1: the pair).",
        "## Load\n```python\nfrom datasets import load_dataset\n\n"
        f'questions = load_dataset("your-org/{name}", "{ALL_CONFIG}", split="train")  # once published\n```\n'
        "A local folder: `datagen.loading.load_questions(folder, config=None)`, which also checks the schema.",
        f"## How it was made\n```\n{command or '(command not recorded)'}\n```",
    ]
    if summary.without_domain_questions:
        sections.append(
            f"Domains without installed domain questions (only `which_image` and `grounding`): "
            f"{', '.join(summary.without_domain_questions)}."
        )
    return "\n\n".join(sections) + "\n"
