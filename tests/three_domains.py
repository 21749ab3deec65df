"""Fixture plugin: a small merged dataset of all three built-in domains, made by the real generators (CLEVR with
Blender at a tiny size) and the real merge, like the demo's `demo_out/all` but smaller.

Test modules load it with `pytest_plugins = ["three_domains"]`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chart_edit.domain import DOMAIN as CHART
from chart_edit.domain import ChartConfig
from datagen.merge import merge
from datagen.runner import RunOptions, run
from realworld_edit.domain import DOMAIN as REALWORLD
from realworld_edit.domain import RealworldConfig

VZERO = str(Path(sys.executable).parent / "vzero")


@pytest.fixture(scope="session")
def three_domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 chart, 6 CLEVR (96x64) and 10 real-photo pairs (built-in photos, 256 px), merged."""
    root = tmp_path_factory.mktemp("three")
    run(CHART, ChartConfig(width=256, height=192), RunOptions(out=root / "chart", num=10, seed=5, shard_size=10))
    run(REALWORLD, RealworldConfig(max_side=256), RunOptions(out=root / "realworld", num=10, seed=5, shard_size=10))
    # In a process of its own: once a test has imported bpy here, it has put Blender's script folders (with a
    # pure-Python `bpy` that needs Blender's `_bpy`) first on sys.path, which spawned render workers inherit.
    clevr = [VZERO, "clevr", "--out", str(root / "clevr"), "--num", "6", "--seed", "5", "--size", "96x64",
             "--samples", "2", "--shard-size", "6", "--workers", "1"]  # fmt: skip
    made = subprocess.run(clevr, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr
    return merge([root / "chart", root / "clevr", root / "realworld"], root / "all", command="vzero merge (test)")
