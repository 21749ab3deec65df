"""The schemas as `datasets.Features`, each declared once and written into every shard's metadata: pair records and
the "what changed?" questions made from them."""

from __future__ import annotations

from datasets import Features, Image, List, Value

EDIT_FEATURES = {
    "op": Value("string"),
    "target": Value("string"),
    "before": Value("string"),
    "after": Value("string"),
}

PAIR_FEATURES = Features(
    {
        "id": Value("string"),
        "domain": Value("string"),
        "civilian": Image(),
        "spy": Image(),
        "diff_mask": Image(),
        "diff_boxes": List(List(Value("int32"), length=4)),
        "edits": List(EDIT_FEATURES),
        "description": Value("string"),
        "difficulty": Value("float32"),
        "meta": Value("string"),
        "seed": Value("int64"),
    }
)

QA_FEATURES = Features(
    {
        "id": Value("string"),
        "pair_id": Value("string"),
        "domain": Value("string"),
        "kind": Value("string"),
        "images": List(Image()),
        "question": Value("string"),
        "choices": List(Value("string")),
        "answer": Value("string"),
        "edit_index": Value("int32"),
    }
)
"""A "what changed?" question about one pair: `images` in the order the question names them, `answer` one of
`choices`, `edit_index` the entry of the pair's `edits` it asks about (-1 when it is about the pair as a whole)."""
