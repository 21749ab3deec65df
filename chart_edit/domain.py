"""The chart domain: its config, the pair generator (table -> spec -> edits -> two renders), its registration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chart_edit.perturb import PERTURBATIONS, describe, perturb
from chart_edit.render import ChartRenderer
from chart_edit.scene import scene_changes
from chart_edit.spec import KINDS, SHAPES, ChartSpec, make_spec, shape_problem, with_shared_frame
from chart_edit.style import Style, sample_style
from chart_edit.synthetic import sample_table
from chart_edit.table import Table
from chart_edit.user_tables import load_tables, sample_window
from datagen.checks import check_choices, check_int
from datagen.difficulty import difficulty
from datagen.errors import ConfigError, InputError, QualityRejected
from datagen.files import files_digest
from datagen.masks import boxes_from_mask, difference_mask
from datagen.quality import QualityGate
from datagen.record import Pair
from datagen.registry import Domain, register_domain
from datagen.seeding import item_rng

MIN_SIZE, MAX_SIZE = 64, 4096
MAX_CHANGES = 4
HARD_AREA = 1e-4
"""A change this small a share of the chart (0.01%: a tick label's dot) is a needle in a haystack."""
TABLE_DRAWS = 8
"""Kind-and-table draws per item before giving up (a table may not fit a kind, e.g. negatives in a pie)."""
# Charts are drawn exactly, so nothing may differ outside the mask; a pie re-proportioned by one value
# legitimately changes most of the figure.
QUALITY = QualityGate(tolerance=0, mask_dilation=2, changed_threshold=24, min_changed_pixels=30, max_area_fraction=0.6)


@dataclass(frozen=True)
class ChartConfig:
    """Options of `vzero chart`; `asdict` of it is saved in the run manifest."""

    kinds: tuple[str, ...] = KINDS
    """Chart kinds to draw, one chosen uniformly per pair."""
    changes: int = 2
    """Distinct edits applied to the civilian chart to make the spy (1..4)."""
    edit_kinds: tuple[str, ...] = tuple(PERTURBATIONS)
    """Perturbations the edits are drawn from."""
    tables: str | None = None
    """Directory of the user's CSV, Parquet or JSON tables; None draws synthetic tables."""
    width: int = 640
    """Image width in pixels."""
    height: int = 480
    """Image height in pixels."""


class ChartPairGenerator:
    """Makes chart pairs; build one per worker process, since it holds a matplotlib figure."""

    def __init__(
        self, config: ChartConfig, tables: Sequence[Table], skipped: Sequence[InputError], input_digest: str = ""
    ) -> None:
        self.config = config
        self.skipped_inputs = list(skipped)
        self.input_digest = input_digest
        self._tables = list(tables)
        self._renderer = ChartRenderer(config.width, config.height)

    def __call__(self, index: int, seed: int) -> Pair:
        """The pair of `seed`: sample, edit, check each edit shows, render both, measure the difference.

        Raises:
            QualityRejected: no fitting table or applicable edits were drawn, or an edit changed nothing visible.
        """
        rng = item_rng(seed)
        civilian = self._civilian(rng)
        changes = perturb(civilian, rng, names=self.config.edit_kinds, count=self.config.changes)
        specs = with_shared_frame([civilian] + [change.spec for change in changes])
        scenes = [self._renderer.scene(spec) for spec in specs]
        for before, after, change in zip(scenes, scenes[1:], changes):
            if not scene_changes(before, after):
                raise QualityRejected(f"edit {change.edit.op} on {change.edit.target} changes nothing visible")
        civilian_pixels, spy_pixels = self._renderer.render_pair(specs[0], specs[-1])
        mask = difference_mask(civilian_pixels, spy_pixels, 0)
        if not mask.any():
            raise QualityRejected("the edits changed no pixel")
        return Pair(
            civilian=civilian_pixels,
            spy=spy_pixels,
            diff_mask=mask,
            diff_boxes=boxes_from_mask(mask, merge_radius=max(2, self.config.width // 160)),
            edits=[change.edit for change in changes],
            description=describe(changes),
            difficulty=difficulty(
                mask, [PERTURBATIONS[change.edit.op].subtlety for change in changes], hard_area=HARD_AREA
            ),
            meta={"kind": civilian.kind, "civilian": specs[0].to_json(), "spy": specs[-1].to_json()},
        )

    def _civilian(self, rng: np.random.Generator) -> ChartSpec:
        """A kind, a table that fits it, a style and the spec drawing them."""
        for _ in range(TABLE_DRAWS):
            kind = str(rng.choice(self.config.kinds))
            shape = SHAPES[kind]
            categories = int(rng.integers(shape.categories[0], shape.categories[1] + 1))
            series = int(rng.integers(shape.series[0], shape.series[1] + 1))
            if self._tables:
                source = self._tables[int(rng.integers(len(self._tables)))]
                table = sample_window(source, rng, num_categories=categories, num_series=series)
            else:
                table = sample_table(rng, num_categories=categories, num_series=series)
            if shape_problem(kind, table) is None:
                return make_spec(kind, table, _style(kind, table, rng), rng)
        raise QualityRejected(f"no table fitting one of {self.config.kinds} in {TABLE_DRAWS} draws")


def _style(kind: str, table: Table, rng: np.random.Generator) -> Style:
    """A style with as many colours as the chart has series (pies: slots, one spare for an added slice)."""
    pie = kind in ("pie", "donut")
    marks = len(table.categories) * len(table.series_names)
    fits = (
        pie
        or (kind in ("bar", "barh", "grouped_bar", "stacked_bar") and marks <= 16)
        or (kind == "heatmap" and marks <= 24)
    )
    return sample_style(
        rng,
        num_colors=8 if pie else len(table.series_names),
        num_series=len(table.series_names),
        value_labels_fit=fits,
        need_markers=kind == "scatter",
    )


def make_generator(config: ChartConfig) -> ChartPairGenerator:
    """Validate `config` (before any work), load the user's tables if any, and build the generator.

    Raises:
        ConfigError: a value is out of range or unknown, or the tables directory holds no usable table.
    """
    validate(config)
    if config.tables is None:
        return ChartPairGenerator(config, [], [])
    tables, skipped = load_tables(Path(config.tables))
    usable = []
    for table in tables:
        problem = _too_small(table, config.kinds)
        if problem is None:
            usable.append(table)
        else:
            skipped.append(InputError(table.source, problem))
    if not usable:
        reasons = "; ".join(str(error) for error in skipped) or "it holds no .csv, .parquet or .json file"
        raise ConfigError(f"no usable table in tables directory {config.tables!r}: {reasons}")
    return ChartPairGenerator(config, usable, skipped, files_digest(Path(config.tables)))


def validate(config: ChartConfig) -> None:
    """Raise `ConfigError` naming the first bad value and what is allowed."""
    check_choices("kinds", config.kinds, KINDS, what="chart kind")
    check_choices("edit_kinds", config.edit_kinds, PERTURBATIONS, what="edit kind")
    check_int("changes", config.changes, 1, MAX_CHANGES)
    for name, size in (("width", config.width), ("height", config.height)):
        check_int(f"image size: {name}", size, MIN_SIZE, MAX_SIZE, unit="pixels")
    for kind in config.kinds:
        fitting = [name for name in dict.fromkeys(config.edit_kinds) if kind in PERTURBATIONS[name].kinds]
        if len(fitting) < config.changes:
            raise ConfigError(
                f"chart kind {kind!r} has {len(fitting)} applicable edit kind(s) among edit_kinds "
                f"({', '.join(fitting) or 'none'}) but changes={config.changes}; add edit kinds or lower changes"
            )


def _too_small(table: Table, kinds: Sequence[str]) -> str | None:
    """Why no window of `table` can be drawn as any of `kinds`, or None when one can."""
    rows, columns = len(table.categories), len(table.series_names)
    if any(rows >= SHAPES[kind].categories[0] and columns >= SHAPES[kind].series[0] for kind in kinds):
        return None
    needs = ", ".join(
        f"{kind}: {SHAPES[kind].categories[0]}+ rows and {SHAPES[kind].series[0]}+ numeric columns"
        for kind in dict.fromkeys(kinds)
    )
    return f"{rows} rows and {columns} numeric column(s) fit none of the chart kinds ({needs})"


DOMAIN = register_domain(
    Domain(
        name="chart",
        config_type=ChartConfig,
        make_generator=make_generator,
        quality=QUALITY,
        summary="matplotlib charts from tables, perturbed in data, text or style",
        prompt_hint="a few elements of the chart differ, for example data values, labels, colours, marks or the legend",
    )
)
