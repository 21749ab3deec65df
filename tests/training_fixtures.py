"""Fixtures of the training tests: one tiny model per session and one torch thread per test.

Test modules load them with `pytest_plugins = ["training_fixtures"]` and
`pytestmark = pytest.mark.usefixtures("one_thread")`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from training_support import HOSTILE_GENERATION

from training.tiny_model import DEFAULT_FAMILY, make_tiny_model


@pytest.fixture
def one_thread():
    """Two busy cores: more threads make every step many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model folder, built once per session."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = make_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen-vl", seed=0)
    torch.set_num_threads(previous)
    return folder


@pytest.fixture(scope="session")
def tiny_family(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """`family -> folder` of the tiny model of each architecture, each built once per session on first use."""
    built = {DEFAULT_FAMILY: tiny_model}

    def get(family: str) -> Path:
        if family not in built:
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            built[family] = make_tiny_model(tmp_path_factory.mktemp(family) / family, family=family, seed=0)
            torch.set_num_threads(previous)
        return built[family]

    return get


@pytest.fixture(scope="session")
def hostile_tiny_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model whose `generation_config.json` asks for every sampling setting training switches off."""
    folder = tmp_path_factory.mktemp("hostile") / "qwen-vl"
    shutil.copytree(tiny_model, folder)
    path = folder / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **HOSTILE_GENERATION}, indent=2))
    return folder
