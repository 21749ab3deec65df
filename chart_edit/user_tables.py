"""Users' own tables (`--tables DIR`): loading CSV, Parquet and JSON files, checking them, cutting chart windows.

Every way a file can be unusable becomes an `InputError` with a reason the user can act on, so that a
folder of hundreds of files loses only its bad ones and the run report says what to fix in each.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from chart_edit.table import Table
from datagen.errors import ConfigError, InputError

SUFFIXES = (".csv", ".parquet", ".json")
MAX_FILE_BYTES = 20 * 2**20
"""Files above this are refused before being read: a chart shows a few dozen rows, not a database."""
MAX_ROWS = 10_000
MIN_ROWS = 2
MAX_NAN_FRACTION = 0.5
"""A numeric column missing more than this share of its values is dropped rather than costing its rows."""
YEAR_RANGE = (1800, 2100)
DEFAULT_VALUE_NAME = "Value"

# A number as people type it in a spreadsheet: optional sign, thousands commas, decimals, a percent sign.
_NUMBER = re.compile(r"[+-]?(?=\.?\d)(?:\d{1,3}(?:,\d{3})+|\d*)(?:\.\d+)?%?")


def load_tables(directory: Path) -> tuple[list[Table], list[InputError]]:
    """Every table file under `directory`, and one error per file that cannot be used.

    Files are visited in sorted relative-path order so that table indices, and the charts drawn from
    them, are the same on every machine.

    Raises:
        ConfigError: `directory` does not exist or is not a directory.
    """
    if not directory.exists():
        raise ConfigError(f"tables directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise ConfigError(f"tables directory {str(directory)!r} is not a directory")
    paths = sorted(
        (p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES),
        key=lambda p: p.relative_to(directory).as_posix(),
    )
    tables: list[Table] = []
    errors: list[InputError] = []
    for path in paths:
        try:
            tables.append(load_table(path))
        except InputError as error:
            errors.append(error)
    return tables, errors


def load_table(path: Path) -> Table:
    """One checked, NaN-free table from a CSV, Parquet or JSON file.

    Categories come from the first non-numeric column (else a first column of years, else row numbers);
    every usable numeric column becomes a series. Numeric columns more than half empty are dropped, then
    rows missing any kept value.

    Raises:
        InputError: the file cannot be read or holds no usable table; `reason` says why.
    """
    source = str(path)
    frame = _read_frame(path, source)
    if frame.empty:
        raise InputError(source, "no data rows")
    if len(frame) > MAX_ROWS:
        raise InputError(source, f"{len(frame):,} rows; the limit is {MAX_ROWS:,}")
    frame.columns = _column_names(frame, source)
    return _to_table(frame, path)


def sample_window(table: Table, rng: np.random.Generator, *, num_categories: int, num_series: int) -> Table:
    """A sub-table for one chart: consecutive categories from a random start and a random subset of series.

    Categories stay contiguous because user tables are often ordered (time, rank) and a chart of a
    stretch keeps that meaning; series keep their order so legends match the file.

    Raises:
        ValueError: a requested size is below 1.
    """
    if num_categories < 1 or num_series < 1:
        raise ValueError(f"window sizes must be at least 1, got {num_categories} categories, {num_series} series")
    n = min(num_categories, len(table.categories))
    k = min(num_series, len(table.series_names))
    start = int(rng.integers(len(table.categories) - n + 1))
    chosen = np.sort(rng.choice(len(table.series_names), size=k, replace=False))
    return dataclasses.replace(
        table,
        categories=table.categories[start : start + n],
        series_names=tuple(table.series_names[i] for i in chosen),
        values=tuple(table.values[i][start : start + n] for i in chosen),
    )


def _read_frame(path: Path, source: str) -> pd.DataFrame:
    """The file parsed into a frame, after the checks that need no parsing (type, size, encoding)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(source, f"unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(source, f"file is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES / 2**20:g} MB")
        data = path.read_bytes()
    except OSError as error:
        raise InputError(source, f"cannot read file: {error.strerror or error}") from error
    if not data:
        raise InputError(source, "empty file")
    if suffix == ".parquet":
        frame = _parse_parquet(data, source)
    else:
        text = _decode(data, source)
        if not text.strip():
            raise InputError(source, "empty file")
        frame = _parse_csv(text, source) if suffix == ".csv" else _parse_json(text, source)
    nested = [str(c) for c in frame.columns if frame[c].map(lambda v: isinstance(v, (list, dict, np.ndarray))).any()]
    if nested:
        raise InputError(source, f"columns {nested} hold nested lists or objects; only flat values are supported")
    return frame


def _decode(data: bytes, source: str) -> str:
    """UTF-8 text, with or without a byte-order mark; the offset in the reason counts from the file start."""
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = skip + error.start
        raise InputError(source, f"not UTF-8 text (invalid byte 0x{data[offset]:02x} at offset {offset})") from error


def _parse_csv(text: str, source: str) -> pd.DataFrame:
    """Comma-separated values with a header row; a row whose field count differs from the header's is refused.

    pandas alone accepts some ragged files silently (an extra field in the first row turns the first
    column into the index), so field counts are checked with the `csv` module first.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    width = None
    try:
        for row in reader:
            if row and width is None:
                width = len(row)
            elif row and len(row) != width:
                raise InputError(
                    source, f"malformed CSV: line {reader.line_num} has {len(row)} fields, the header has {width}"
                )
    except csv.Error as error:
        raise InputError(source, f"malformed CSV: {error}") from error
    try:
        return pd.read_csv(io.StringIO(text), index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(source, f"malformed CSV: {str(error).strip().splitlines()[0]}") from error


def _parse_parquet(data: bytes, source: str) -> pd.DataFrame:
    """A Parquet file's frame; an index pandas saved into it (e.g. a `team` index) becomes a column again."""
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except (pa.ArrowException, OSError) as error:
        raise InputError(source, f"not a readable Parquet file: {str(error).splitlines()[0]}") from error
    return frame if isinstance(frame.index, pd.RangeIndex) else frame.reset_index()


def _parse_json(text: str, source: str) -> pd.DataFrame:
    """A list of row objects (`[{"col": v}, ...]`) or an object of equally long column lists."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(source, f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from error
    if isinstance(data, list):
        strays = [i for i, row in enumerate(data) if not isinstance(row, dict)]
        if strays:
            kind = type(data[strays[0]]).__name__
            raise InputError(source, f"JSON list must hold one object per row; item {strays[0]} is a {kind}")
        frame = pd.DataFrame.from_records(data)
    elif isinstance(data, dict):
        strays = [name for name, column in data.items() if not isinstance(column, list)]
        if strays:
            kind = type(data[strays[0]]).__name__
            raise InputError(source, f"JSON object must map column names to lists; {strays[0]!r} holds a {kind}")
        lengths = {name: len(column) for name, column in data.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(source, f"JSON columns have different lengths: {lengths}")
        frame = pd.DataFrame(data)
    else:
        raise InputError(
            source, f"JSON must be a list of row objects or an object of column lists, not a {type(data).__name__}"
        )
    return frame


def _column_names(frame: pd.DataFrame, source: str) -> list[str]:
    """Column names as stripped strings (they become series names, so they must be unique)."""
    names = [str(c).strip() or f"Unnamed: {i}" for i, c in enumerate(frame.columns)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(source, f"duplicate column names {repeated}")
    return names


def _as_number(column: pd.Series) -> pd.Series | None:
    """The column as floats (inf as NaN) if every present value is a number, else None (a text column).

    Text such as "1,234" or "12%" counts as a number, since spreadsheets export values that way.
    """
    if is_bool_dtype(column) or is_datetime64_any_dtype(column):
        return None
    if is_numeric_dtype(column):
        numbers = column.astype(float)
    else:
        text = _labels(column).dropna()
        if not text.map(lambda v: _NUMBER.fullmatch(v) is not None).all():
            return None
        parsed = pd.to_numeric(text.str.replace(",", "").str.rstrip("%"), errors="coerce").astype(float)
        numbers = parsed.reindex(column.index)
    return numbers.replace([np.inf, -np.inf], np.nan)


def _labels(column: pd.Series) -> pd.Series:
    """Category labels as stripped strings, None where missing or blank."""
    if is_datetime64_any_dtype(column):
        timed = (column.dropna() != column.dropna().dt.normalize()).any()
        column = column.dt.strftime("%Y-%m-%d %H:%M" if timed else "%Y-%m-%d")
    return column.map(lambda v: None if pd.isna(v) or not str(v).strip() else str(v).strip())


def _is_years(numbers: pd.Series) -> bool:
    """Whether a numeric column reads as years (whole numbers 1800..2100), which make good categories."""
    low, high = YEAR_RANGE
    return bool(numbers.notna().all() and (numbers % 1 == 0).all() and numbers.between(low, high).all())


def _categories(frame: pd.DataFrame, numeric: dict[str, pd.Series]) -> tuple[str, pd.Series]:
    """The category axis: its name and labels (None where missing). May take a year column out of `numeric`."""
    text_columns = [name for name in frame.columns if name not in numeric]
    if text_columns:
        return text_columns[0], _labels(frame[text_columns[0]])
    first = str(frame.columns[0])
    if len(numeric) > 1 and _is_years(numeric[first]):
        return first, numeric.pop(first).map(lambda v: str(int(v)))
    return "Row", pd.Series([f"Row {i + 1}" for i in range(len(frame))], index=frame.index)


def _usable_series(numeric: dict[str, pd.Series], source: str) -> dict[str, pd.Series]:
    """The numeric columns worth charting: not entirely missing and at most half missing."""
    present = {name: values for name, values in numeric.items() if values.notna().any()}
    if not present:
        raise InputError(source, f"every numeric column is empty (all values missing): {list(numeric)}")
    kept = {name: values for name, values in present.items() if values.isna().mean() <= MAX_NAN_FRACTION}
    if not kept:
        missing = {name: f"{values.isna().mean():.0%}" for name, values in present.items()}
        raise InputError(
            source, f"every numeric column is more than {MAX_NAN_FRACTION:.0%} missing (missing share: {missing})"
        )
    return kept


def _to_table(frame: pd.DataFrame, path: Path) -> Table:
    """Pick the category column and series, drop incomplete rows, and check what remains is a chartable table."""
    source = str(path)
    numeric = {name: values for name in frame.columns if (values := _as_number(frame[name])) is not None}
    if not numeric:
        raise InputError(source, f"no numeric column: columns are {list(frame.columns)}")
    category_name, labels = _categories(frame, numeric)
    series = _usable_series(numeric, source)
    complete = labels.notna() & pd.concat(series.values(), axis=1).notna().all(axis=1)
    if complete.sum() < MIN_ROWS:
        raise InputError(
            source,
            f"only {complete.sum()} complete row(s) after dropping rows with missing values; need at least {MIN_ROWS}",
        )
    labels = labels[complete]
    repeated = labels[labels.duplicated()].unique().tolist()
    if repeated:
        raise InputError(
            source, f"category column {category_name!r} repeats {repeated[:5]}; each row needs a unique label"
        )
    title = path.stem.replace("_", " ").strip() or path.name
    return Table(
        title=title[:1].upper() + title[1:],
        category_name=category_name,
        categories=tuple(labels),
        series_names=tuple(series),
        values=tuple(tuple(float(v) for v in values[complete]) for values in series.values()),
        value_name=DEFAULT_VALUE_NAME,
        unit="",
        source=source,
    )
