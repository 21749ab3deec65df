"""The chart domain's table layer: synthetic tables and users' CSV/Parquet/JSON tables."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chart_edit import user_tables
from chart_edit.synthetic import MAX_CATEGORIES, MAX_SERIES, MIN_CATEGORIES, THEMES, sample_table
from chart_edit.table import Table
from chart_edit.user_tables import load_table, load_tables, sample_window
from datagen.errors import ConfigError, InputError


def _check_well_formed(table: Table, n: int, k: int) -> None:
    assert len(table.categories) == n
    assert len(table.series_names) == k
    assert len(set(table.categories)) == n, table.categories
    assert len(set(table.series_names)) == k, table.series_names
    for row in table.values:
        assert all(math.isfinite(v) for v in row)
        assert len(set(row)) > 1, f"flat series in {table.title}"
    assert table.title and table.category_name and table.value_name and table.unit
    assert table.source.startswith("synthetic:")


# ---- synthetic tables -------------------------------------------------------------------------------------------


def test_every_size_on_the_grid_gives_a_well_formed_table() -> None:
    for n in range(MIN_CATEGORIES, MAX_CATEGORIES + 1):
        for k in range(1, MAX_SERIES + 1):
            for seed in range(3):
                table = sample_table(np.random.default_rng([seed, n, k]), num_categories=n, num_series=k)
                _check_well_formed(table, n, k)


@pytest.mark.parametrize("theme", THEMES, ids=lambda t: t.name)
def test_every_theme_builds_at_its_limits(theme) -> None:
    rng = np.random.default_rng(7)
    for n in (2, theme.max_categories):
        for k in (1, MAX_SERIES):
            table = theme.build(rng, n, k)
            _check_well_formed(table, n, k)
            assert table.source == f"synthetic:{theme.name}"


def test_themes_cover_every_length_and_are_all_used() -> None:
    assert len(THEMES) >= 8
    for n in range(MIN_CATEGORIES, MAX_CATEGORIES + 1):
        assert [t for t in THEMES if t.max_categories >= n], f"no theme supplies {n} categories"
    rng = np.random.default_rng(0)
    used = {
        sample_table(rng, num_categories=int(rng.integers(2, 8)), num_series=int(rng.integers(1, 7))).source
        for _ in range(800)
    }
    assert used == {f"synthetic:{t.name}" for t in THEMES}
    long_sources = {sample_table(rng, num_categories=60, num_series=3).source for _ in range(100)}
    assert long_sources == {f"synthetic:{t.name}" for t in THEMES if t.max_categories >= 60}


def test_same_seed_same_table_whatever_the_global_rngs() -> None:
    for seed in range(30):
        np.random.seed(seed + 1)
        random.seed(seed + 2)
        first = sample_table(np.random.default_rng(seed), num_categories=9, num_series=3)
        np.random.seed(seed + 100)
        random.seed(seed + 200)
        second = sample_table(np.random.default_rng(seed), num_categories=9, num_series=3)
        assert first == second


def test_different_seeds_usually_give_different_tables() -> None:
    tables = [sample_table(np.random.default_rng(seed), num_categories=6, num_series=2) for seed in range(60)]
    assert len({t.values for t in tables}) == 60
    assert len({t.source for t in tables}) >= 8


def test_values_have_plausible_magnitudes_and_shares_sum_to_100() -> None:
    rng = np.random.default_rng(3)
    for theme in THEMES:
        for _ in range(20):
            table = theme.build(rng, min(6, theme.max_categories), 4)
            values = np.array(table.values)
            if table.unit == "°C":
                assert values.min() > -40 and values.max() < 45
            else:
                assert values.min() >= 0, (theme.name, values.min())
            if table.unit == "%":
                assert values.max() <= 100
            if theme.name in ("market_share", "survey"):
                np.testing.assert_allclose(values.sum(axis=1), 100.0, atol=0.6)


def test_monthly_temperature_follows_the_hemisphere() -> None:
    theme = next(t for t in THEMES if t.name == "monthly_temperature")
    rng = np.random.default_rng(11)
    for _ in range(20):
        table = theme.build(rng, 12, 6)
        for city, row in zip(table.series_names, table.values):
            january, july = row[0], row[6]
            if city in ("Sydney", "Buenos Aires", "Cape Town"):
                assert january > july, city
            elif city in ("Oslo", "Toronto", "Moscow", "Tokyo"):
                assert july > january, city


@pytest.mark.parametrize(("n", "k"), [(1, 1), (61, 1), (5, 0), (5, 7)])
def test_out_of_range_sizes_are_refused(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="must be in"):
        sample_table(np.random.default_rng(0), num_categories=n, num_series=k)


# ---- user tables: good files ------------------------------------------------------------------------------------


def test_csv_loads_categories_series_and_values(tmp_path: Path) -> None:
    path = tmp_path / "fruit_sales_2023.csv"
    path.write_text("fruit,north,south\napple, 10,1.5\n pear ,20,2.5\nplum,30,3.5\n", encoding="utf-8")
    table = load_table(path)
    assert table.title == "Fruit sales 2023"
    assert table.category_name == "fruit"
    assert table.categories == ("apple", "pear", "plum")
    assert table.series_names == ("north", "south")
    assert table.values == ((10.0, 20.0, 30.0), (1.5, 2.5, 3.5))
    assert (table.value_name, table.unit, table.source) == ("Value", "", str(path))


def test_csv_with_bom_year_column_and_formatted_numbers(tmp_path: Path) -> None:
    path = tmp_path / "gdp.csv"
    path.write_bytes('\ufeffyear,gdp,share\n2001,"1,234",12%\n2002,"2,500.5",13.5%\n'.encode())
    table = load_table(path)
    assert table.category_name == "year"
    assert table.categories == ("2001", "2002")
    assert table.series_names == ("gdp", "share")
    assert table.values == ((1234.0, 2500.5), (12.0, 13.5))


def test_all_numeric_without_years_uses_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("a,b\n5,1\n6,2\n7,3\n", encoding="utf-8")
    table = load_table(path)
    assert table.category_name == "Row"
    assert table.categories == ("Row 1", "Row 2", "Row 3")
    assert table.values == ((5.0, 6.0, 7.0), (1.0, 2.0, 3.0))


def test_parquet_loads(tmp_path: Path) -> None:
    path = tmp_path / "team_points.parquet"
    frame = pd.DataFrame({"team": ["A", "B", "C"], "2022": [10, 20, 30], "2023": [1.5, 2.5, 3.5]})
    frame.to_parquet(path)
    table = load_table(path)
    assert table.title == "Team points"
    assert table.categories == ("A", "B", "C")
    assert table.series_names == ("2022", "2023")
    assert table.values == ((10.0, 20.0, 30.0), (1.5, 2.5, 3.5))


def test_parquet_saved_index_becomes_the_category_column(tmp_path: Path) -> None:
    path = tmp_path / "indexed.parquet"
    pd.DataFrame({"team": ["A", "B"], "points": [3, 1]}).set_index("team").to_parquet(path)
    table = load_table(path)
    assert (table.category_name, table.categories, table.values) == ("team", ("A", "B"), ((3.0, 1.0),))


def test_parquet_dates_become_day_labels(tmp_path: Path) -> None:
    path = tmp_path / "daily.parquet"
    pd.DataFrame({"day": pd.date_range("2024-03-01", periods=3), "visits": [5, 7, 6]}).to_parquet(path)
    table = load_table(path)
    assert table.categories == ("2024-03-01", "2024-03-02", "2024-03-03")
    assert table.values == ((5.0, 7.0, 6.0),)


@pytest.mark.parametrize(
    "payload",
    [
        [{"city": "Oslo", "rain": 70, "sun": 4.5}, {"city": "Rome", "rain": 60, "sun": "8"}],
        {"city": ["Oslo", "Rome"], "rain": [70, 60], "sun": [4.5, 8]},
    ],
    ids=["records", "columns"],
)
def test_json_records_and_columns_load(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "weather.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    table = load_table(path)
    assert table.category_name == "city"
    assert table.categories == ("Oslo", "Rome")
    assert table.series_names == ("rain", "sun")
    assert table.values == ((70.0, 60.0), (4.5, 8.0))


def test_nan_handling_drops_sparse_columns_then_incomplete_rows(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text(
        "name,full,sparse,empty,gappy\na,1,,,10\nb,2,,,\nc,3,7,,30\nd,inf,,,40\n,5,,,50\nf,6,8,,60\n",
        encoding="utf-8",
    )
    table = load_table(path)
    # sparse (4/6 missing) and empty are dropped; b (gappy), d (inf) and the unnamed row lose their rows.
    assert table.series_names == ("full", "gappy")
    assert table.categories == ("a", "c", "f")
    assert table.values == ((1.0, 3.0, 6.0), (10.0, 30.0, 60.0))


# ---- user tables: bad files -------------------------------------------------------------------------------------


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


BAD_FILES = {
    "empty.csv": ("", ["empty file"]),
    "blank.json": ("  \n", ["empty file"]),
    "header_only.csv": ("a,b\n", ["no data rows"]),
    "all_nan.csv": ("name,a,b\nx,,\ny,,\n", ["every numeric column is empty", "'a'", "'b'"]),
    "mostly_nan.csv": ("name,a\nx,1\ny,\nz,\n", ["more than 50% missing", "67%"]),
    "text_only.csv": ("name,city\nAnn,Oslo\nBo,Rome\n", ["no numeric column", "['name', 'city']"]),
    "latin1.csv": ("name,v\ncafé,1\nthé,2\n".encode("latin-1"), ["not UTF-8", "0xe9", "offset 10"]),
    "bom_then_latin1.csv": (b"\xef\xbb\xbfn,v\n\xe9,1\n", ["not UTF-8", "0xe9", "offset 7"]),
    "ragged.csv": ("a,b\n1,2\n3,4,5\n", ["malformed CSV", "line 3", "3 fields", "header has 2"]),
    "ragged_first_row.csv": ("a,b\n1,2,3\n4,5\n", ["malformed CSV", "line 2"]),
    "one_row.csv": ("name,v\nx,1\ny,\n", ["only 1 complete row", "at least 2"]),
    "duplicates.csv": ("name,v\nx,1\nx,2\ny,3\n", ["repeats", "'x'", "unique"]),
    "scalar.json": ('"just a string"', ["list of row objects or an object of column lists", "str"]),
    "mixed_list.json": ('[{"a": 1}, 5]', ["one object per row", "item 1 is a int"]),
    "uneven.json": ('{"a": [1, 2], "b": [1]}', ["different lengths"]),
    "broken.json": ('[{"a": 1,', ["invalid JSON", "line 1"]),
    "nested.json": ('[{"a": [1]}, {"a": [2]}]', ["nested"]),
    "not_parquet.parquet": (b"PAR1 this is not parquet", ["not a readable Parquet file"]),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_refused_with_a_specific_reason(tmp_path: Path, name: str) -> None:
    content, words = BAD_FILES[name]
    path = _write(tmp_path / name, content)
    with pytest.raises(InputError) as caught:
        load_table(path)
    assert caught.value.source == str(path)
    for word in words:
        assert word in caught.value.reason, (word, caught.value.reason)


def test_file_over_the_size_limit_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:  # sparse: instant to create, never read
        handle.truncate(user_tables.MAX_FILE_BYTES + 11 * 2**20)
    with pytest.raises(InputError, match=r"file is 31\.0 MB; the limit is 20 MB"):
        load_table(path)


def test_file_over_the_row_limit_is_refused(tmp_path: Path) -> None:
    rows = user_tables.MAX_ROWS + 1
    path = _write(tmp_path / "long.csv", "v\n" + "".join(f"{i}\n" for i in range(rows)))
    with pytest.raises(InputError, match=f"{rows:,} rows; the limit is {user_tables.MAX_ROWS:,}"):
        load_table(path)


def test_directory_of_good_and_bad_files_keeps_the_good_ones(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "b_good.csv", "k,v\nx,1\ny,2\n")
    _write(tmp_path / "sub" / "a_good.json", '{"k": ["p", "q", "r"], "v": [3, 4, 5]}')
    pd.DataFrame({"k": ["s", "t"], "v": [6.0, 7.0]}).to_parquet(tmp_path / "c_good.parquet")
    bad = [_write(tmp_path / name, BAD_FILES[name][0]) for name in ("empty.csv", "latin1.csv", "broken.json")]
    _write(tmp_path / "notes.txt", "not a table")
    tables, errors = load_tables(tmp_path)
    assert [t.categories for t in tables] == [("x", "y"), ("s", "t"), ("p", "q", "r")]
    assert sorted(e.source for e in errors) == sorted(str(p) for p in bad)
    assert all(isinstance(e, InputError) and e.reason for e in errors)


def test_missing_or_non_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_tables(tmp_path / "nowhere")
    file = _write(tmp_path / "t.csv", "k,v\nx,1\ny,2\n")
    with pytest.raises(ConfigError, match="not a directory"):
        load_tables(file)


# ---- windows ------------------------------------------------------------------------------------------------------


def _numbered_table(n: int, k: int) -> Table:
    return Table(
        title="T",
        category_name="C",
        categories=tuple(f"c{i}" for i in range(n)),
        series_names=tuple(f"s{j}" for j in range(k)),
        values=tuple(tuple(float(100 * j + i) for i in range(n)) for j in range(k)),
        value_name="V",
        unit="",
        source="test",
    )


def test_window_is_contiguous_with_series_in_order() -> None:
    table = _numbered_table(40, 5)
    starts = set()
    for seed in range(50):
        window = sample_window(table, np.random.default_rng(seed), num_categories=7, num_series=3)
        first = int(window.categories[0][1:])
        starts.add(first)
        assert window.categories == tuple(f"c{i}" for i in range(first, first + 7))
        series = [int(name[1:]) for name in window.series_names]
        assert len(series) == 3 and series == sorted(series)
        assert window.values == tuple(tuple(float(100 * j + i) for i in range(first, first + 7)) for j in series)
    assert len(starts) > 10


def test_window_of_a_small_table_is_the_table_and_is_deterministic() -> None:
    table = _numbered_table(4, 2)
    assert sample_window(table, np.random.default_rng(1), num_categories=10, num_series=6) == table
    big = _numbered_table(30, 6)
    assert sample_window(big, np.random.default_rng(5), num_categories=8, num_series=2) == sample_window(
        big, np.random.default_rng(5), num_categories=8, num_series=2
    )
