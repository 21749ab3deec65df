"""Helpers of the training tests: loading the tiny model, a sampler, games from real pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagen.loading import load_pairs
from training.config import GameConfig
from training.game import Game, make_game
from training.model import LoadedModel, load_model_and_processor, suppressed_token_ids
from training.rollout import ModelSampler, SamplingConfig

TINY_PIXELS = 28 * 28 * 16
HOSTILE_GENERATION = {
    "repetition_penalty": 1.3,
    "top_k": 5,
    "top_p": 0.6,
    "min_p": 0.05,
    "typical_p": 0.9,
    "no_repeat_ngram_size": 2,
    "min_new_tokens": 6,
    "max_new_tokens": 3,
    "temperature": 0.1,
}
"""What a model's `generation_config.json` may ask for that training must not inherit (Qwen2.5-VL-7B-Instruct's
asks for repetition_penalty 1.05, top_k 1, top_p 0.001)."""


def load_tiny(folder: Path) -> LoadedModel:
    return load_model_and_processor(folder, max_pixels=TINY_PIXELS)


def make_sampler(loaded: LoadedModel, *, max_new_tokens: int = 16, temperature: float = 1.0) -> ModelSampler:
    suppressed = tuple(suppressed_token_ids(loaded.model, loaded.processor))
    return ModelSampler(loaded.model, loaded.processor, SamplingConfig(max_new_tokens, temperature, suppressed))


def make_games(dataset: Path, count: int, config: GameConfig, seed: int = 0) -> list[Game]:
    pairs = load_pairs(dataset)
    return [make_game(pairs[i], config, np.random.default_rng([seed, i])) for i in range(count)]


def gathered_training_state(checkpoint: Path) -> dict:
    """A checkpoint's sharded training state (weights, optimizer) gathered into this process by torch's converter."""
    import tempfile

    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "state.pt"
        dcp_to_torch_save(checkpoint / "training_state", target)
        return torch.load(target, weights_only=False)
