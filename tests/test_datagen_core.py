"""The core pieces on real data: the pair features, seeding, masks, the quality gate and shard writing."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from PIL import Image

from datagen import shards
from datagen.errors import GenerationError, QualityRejected
from datagen.features import PAIR_FEATURES
from datagen.masks import boxes_from_mask, difference_mask
from datagen.quality import QualityGate
from datagen.record import Edit, Pair
from datagen.seeding import item_seed
from datagen.store import FsspecStore, LocalStore


def test_load_dataset_reads_every_column_with_declared_features(chart_dataset):
    pairs = load_dataset(str(chart_dataset), split="train")
    assert pairs.features == PAIR_FEATURES
    assert len(pairs) == 12
    row = pairs[0]
    assert isinstance(row["civilian"], Image.Image) and isinstance(row["spy"], Image.Image)
    assert row["civilian"].size == row["spy"].size == row["diff_mask"].size == (256, 192)
    assert row["diff_mask"].mode == "L"
    assert row["id"] == "chart-s3-00000000" and row["domain"] == "chart"
    assert all(len(box) == 4 for box in row["diff_boxes"]) and row["diff_boxes"]
    assert {"op", "target", "before", "after"} == set(row["edits"][0])
    assert 0.0 <= row["difficulty"] <= 1.0
    assert isinstance(json.loads(row["meta"]), dict)
    assert row["seed"] in {item_seed(3, 0, attempt) for attempt in range(4)}


def test_item_seed_is_a_pure_function_of_its_coordinates():
    assert item_seed(7, 11) == item_seed(7, 11)
    seeds = {item_seed(7, i, a) for i in range(200) for a in range(3)}
    assert len(seeds) == 600
    assert item_seed(7, 11) != item_seed(8, 11)
    with pytest.raises(ValueError):
        item_seed(-1, 0)


def test_boxes_cover_each_changed_region_tightly():
    mask = np.zeros((60, 80), bool)
    mask[5:10, 5:15] = True
    mask[40:50, 60:70] = True
    assert boxes_from_mask(mask, merge_radius=2) == [[5, 5, 15, 10], [60, 40, 70, 50]]


def _pair(civilian: np.ndarray, spy: np.ndarray, mask: np.ndarray) -> Pair:
    return Pair(civilian, spy, mask, boxes_from_mask(mask), [Edit("recolor", "square", "red", "blue")], "x", 0.5)


def test_quality_gate_accepts_a_local_change_and_rejects_leaks_small_and_huge_changes():
    civilian = np.full((100, 100, 3), 200, np.uint8)
    spy = civilian.copy()
    spy[20:40, 20:40] = (0, 0, 255)
    gate = QualityGate()
    gate.check(_pair(civilian, spy, difference_mask(civilian, spy)))

    leaked = spy.copy()
    leaked[90, 90] = 0
    with pytest.raises(QualityRejected, match="outside diff_mask"):
        gate.check(_pair(civilian, leaked, difference_mask(civilian, spy)))

    faint = civilian.copy()
    faint[20:40, 20:40] = 205
    with pytest.raises(QualityRejected, match="clearly changed"):
        gate.check(_pair(civilian, faint, difference_mask(civilian, faint)))

    huge = civilian.copy()
    huge[:80] = 0
    with pytest.raises(QualityRejected, match="covers"):
        gate.check(_pair(civilian, huge, difference_mask(civilian, huge)))

    with pytest.raises(QualityRejected, match="sizes differ"):
        gate.check(_pair(civilian, spy[:50], np.zeros((100, 100), bool)))


def test_a_failed_shard_write_leaves_no_file_behind(tmp_path, monkeypatch):
    def disk_full(writer, table, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", disk_full)
    target = tmp_path / "train-00000-of-00001.parquet"
    with pytest.raises(GenerationError, match="No space left on device"):
        shards.write_shard([], target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "url"])
def test_a_write_that_fails_half_way_keeps_the_previous_file_whole(tmp_path, kind):
    """What every store promises: a failed or interrupted write never replaces a good file with part of a new one."""
    store = LocalStore(tmp_path / "ds") if kind == "folder" else FsspecStore(f"memory://{tmp_path.name}/ds")
    store.write_bytes("manifest.json", b"old, whole")
    with pytest.raises(OSError), store.committing("manifest.json") as temporary:
        temporary.write_bytes(b"new, ha")
        raise OSError(28, "No space left on device")
    assert store.read_bytes("manifest.json") == b"old, whole"
    assert store.temporaries() == []
