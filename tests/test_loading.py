"""`datagen.loading.load_pairs`, the loader training and export read pairs through."""

from __future__ import annotations

import pandas as pd
import pytest

from datagen.errors import DatasetError
from datagen.features import PAIR_FEATURES
from datagen.loading import load_pairs


def test_a_local_dataset_folder_loads_with_the_pair_features(chart_dataset):
    pairs = load_pairs(chart_dataset)
    assert pairs.features == PAIR_FEATURES and len(pairs) == 12
    streamed = next(iter(load_pairs(chart_dataset, streaming=True)))
    assert streamed["id"] == pairs[0]["id"] and streamed["spy"].size == pairs[0]["spy"].size


def test_a_folder_without_the_pair_schema_is_refused_naming_the_missing_columns(tmp_path):
    (tmp_path / "data").mkdir()
    pd.DataFrame({"image": ["a"], "label": [1]}).to_parquet(tmp_path / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(DatasetError, match="missing column.*civilian"):
        load_pairs(tmp_path)


def test_a_file_or_a_malformed_id_is_refused(tmp_path):
    a_file = tmp_path / "x.parquet"
    a_file.write_bytes(b"")
    with pytest.raises(DatasetError, match="is a file"):
        load_pairs(a_file)
    with pytest.raises(DatasetError, match="neither a local folder nor a Hub dataset id"):
        load_pairs("not-a-folder-and-no-slash")


def test_a_folder_of_other_files_or_an_unreadable_shard_is_refused_clearly(tmp_path):
    (tmp_path / "notes.json").write_text("{}")
    with pytest.raises(DatasetError, match="no data/\\*.parquet shards"):
        load_pairs(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DatasetError, match="cannot load"):
        load_pairs(tmp_path)


def test_two_folders_of_the_same_name_and_layout_load_their_own_records(chart_dataset, tmp_path):
    """`datasets` keys its cache of a folder loaded by path on the folder's name and layout, not its place or
    content: a second `all` (another merge) or a regenerated run was served the first one's records."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    first, second = tmp_path / "a" / chart_dataset.name, tmp_path / "b" / chart_dataset.name
    shutil.copytree(chart_dataset, first)
    shutil.copytree(chart_dataset, second)
    for shard in sorted((second / "data").glob("*.parquet")):
        table = pq.read_table(shard)
        column = table.schema.get_field_index("description")
        table = table.set_column(column, table.schema.field(column), pa.array(["rewritten"] * len(table)))
        pq.write_table(table, shard)
    assert load_pairs(first)["description"] == load_pairs(chart_dataset)["description"]
    assert set(load_pairs(second)["description"]) == {"rewritten"}
    assert load_pairs(second).features == PAIR_FEATURES, "the shards' own feature metadata still decodes images"
