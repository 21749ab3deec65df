"""Fixture plugin: a small merged dataset of all three built-in domains, made by the real generators (CLEVR with
Blender at a tiny size) and the real merge, like the demo's `demo_out/all` but smaller.

Test modules load it with `pytest_plugins = ["three_domains"]`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chart_edit.domain import DOMAIN as CHART
from chart_edit.domain import ChartConfig
from clevr_scenes.domain import DOMAIN as CLEVR
from clevr_scenes.domain import ClevrConfig
from datagen.merge import merge
from datagen.runner import RunOptions, run
from realworld_edit.domain import DOMAIN as REALWORLD
from realworld_edit.domain import RealworldConfig


@pytest.fixture(scope="session")
def three_domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 chart, 6 CLEVR (96x64) and 10 real-photo pairs (built-in photos, 256 px), merged."""
    root = tmp_path_factory.mktemp("three")
    runs = [
        (CHART, ChartConfig(width=256, height=192), root / "chart", 10),
        (CLEVR, ClevrConfig(width=96, height=64, samples=2), root / "clevr", 6),
        (REALWORLD, RealworldConfig(max_side=256), root / "realworld", 10),
    ]
    for domain, config, out, num in runs:
        run(domain, config, RunOptions(out=out, num=num, seed=5, shard_size=num))
    return merge([out for _, _, out, _ in runs], root / "all", command="vzero merge (test)")
