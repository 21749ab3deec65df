"""The pair record's schema as `datasets.Features`: declared once, written into every shard's metadata."""

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
