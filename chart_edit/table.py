"""The data table a chart is drawn from: categories along one axis, one or more numeric series."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Table:
    """A small table, always rectangular and free of NaN (user tables are cleaned before this).

    Attributes:
        title: human title, e.g. "Annual revenue by product line".
        category_name: what the categories are, e.g. "Year" (the category axis label).
        categories: category labels, e.g. ("2019", "2020", ...); unique.
        series_names: one name per series, e.g. ("North", "South"); unique.
        values: `[n_series][n_categories]` finite floats.
        value_name: what the numbers measure, e.g. "Revenue" (the value axis label).
        unit: unit of the values, e.g. "USD m", "%", "°C"; may be empty.
        source: where it came from, e.g. "synthetic:yearly_revenue" or a file path.
    """

    title: str
    category_name: str
    categories: tuple[str, ...]
    series_names: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    value_name: str
    unit: str
    source: str

    def __post_init__(self) -> None:
        if len(self.values) != len(self.series_names):
            raise ValueError(f"{len(self.values)} value rows for {len(self.series_names)} series")
        for name, row in zip(self.series_names, self.values):
            if len(row) != len(self.categories):
                raise ValueError(f"series {name!r} has {len(row)} values for {len(self.categories)} categories")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form, stored in a pair's `meta`."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        return cls(
            title=data["title"],
            category_name=data["category_name"],
            categories=tuple(data["categories"]),
            series_names=tuple(data["series_names"]),
            values=tuple(tuple(float(v) for v in row) for row in data["values"]),
            value_name=data["value_name"],
            unit=data["unit"],
            source=data["source"],
        )

    def with_values(self, values: list[list[float]] | tuple[tuple[float, ...], ...]) -> Table:
        """A copy with new values (same shape check as construction)."""
        return replace(self, values=tuple(tuple(float(v) for v in row) for row in values))
