"""The names of a dataset folder's files, defined once: every module that reads or writes them imports them here.

OUT/data/train-00000-of-00004.parquet   (a merged folder: OUT/data/<domain>/train-*.parquet)
OUT/README.md                           dataset card
OUT/preview.png                         contact sheet
OUT/manifest.json                       config, counts, shards and their checksums
OUT/report.jsonl                        one line per retried or skipped item and skipped input
"""

from __future__ import annotations

DATA_DIR = "data"
CARD_NAME = "README.md"
PREVIEW_NAME = "preview.png"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "report.jsonl"
LOCK_NAME = ".manifest.lock"
TOP_LEVEL_FILES = (CARD_NAME, PREVIEW_NAME, MANIFEST_NAME, REPORT_NAME)
"""What a published folder holds beside its shards (`report.jsonl` too: the card points readers to it)."""


def shard_name(number: int, total: int) -> str:
    """`train-00001-of-00004.parquet`: the Hub's file name of shard `number` of `total`."""
    return f"train-{number:05d}-of-{total:05d}.parquet"
