"""Scripted players: a test double of the sampler that answers prompts with texts chosen by the test, no model.

It speaks through the same `Sampler` interface as the model sampler, so games, prompts, parsing, rewards,
advantages, statistics and the stage scheduler run exactly as in training. Each prompt is traced back to its game
by the identity of its image (build every game from its own record) and to its player by the prompt's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from training.config import GameConfig
from training.game import Game, make_game
from training.rollout import Completions, Messages, message_images

ClueScript = Callable[[Game, int, int], str]
"""(game, seat, round) -> the clue reply."""
VoteScript = Callable[[Game, int | None, int], list[str]]
"""(game, voter seat or None for the judge, G) -> G vote replies."""

_PLAYER = re.compile(r"You are player (\d+)\.")
_ROUND = re.compile(r"It is round (\d+) of")


def fresh_record(index: int, size: tuple[int, int] = (16, 12)) -> dict:
    """A pair record with images of its own (so that prompts can be traced back to their game)."""
    return {
        "id": f"chart-s0-{index:08d}",
        "domain": "chart",
        "civilian": Image.new("RGB", size, (10, 20, 30)),
        "spy": Image.new("RGB", size, (200, 20, 30)),
        "description": f"pair {index} changed",
    }


def fresh_games(count: int, config: GameConfig, seed: int, first_index: int = 0) -> list[Game]:
    rng = np.random.default_rng(seed)
    return [make_game(fresh_record(first_index + i), config, rng) for i in range(count)]


def seat_clue(game: Game, seat: int, round_number: int) -> str:
    """A clue reply that names its speaker, so tests can tell which seat a completion belongs to."""
    return f"I look closely. \\boxed{{clue of seat {seat} in round {round_number}}}"


class ScriptedPlayers:
    """`sample(prompts, num_samples)` like the model sampler, with replies from `clue` and `vote` scripts."""

    def __init__(self, games: Sequence[Game], *, vote: VoteScript, clue: ClueScript = seat_clue) -> None:
        self.by_image = {}
        for game in games:
            self.by_image[id(game.civilian_image)] = game
            self.by_image[id(game.spy_image)] = game
        self.vote = vote
        self.clue = clue
        self.calls: list[int] = []
        """Rows of every `sample` call, in order."""

    def sample(self, prompts: Sequence[Messages], *, num_samples: int = 1) -> Completions:
        texts = []
        for prompt in prompts:
            game = self.by_image[id(message_images(prompt)[0])]
            text = prompt[1]["content"][1]["text"]
            player = _PLAYER.search(text)
            if "your turn to give a clue" in text:
                round_number = int(_ROUND.search(text).group(1))
                texts.extend(self.clue(game, int(player.group(1)), round_number) for _ in range(num_samples))
            else:
                voter = None if "You are the judge" in text else int(player.group(1))
                replies = self.vote(game, voter, num_samples)
                assert len(replies) == num_samples
                texts.extend(replies)
        self.calls.append(len(texts))
        return scripted_completions(texts)


def scripted_completions(texts: list[str]) -> Completions:
    """Completions of `texts` with one token per word plus an end-of-turn token (lengths feed the statistics)."""
    lengths = [len(text.split()) + 1 for text in texts]
    width = max(lengths)
    mask = torch.tensor([[1] * length + [0] * (width - length) for length in lengths])
    rows = len(texts)
    return Completions(
        prompt_ids=torch.zeros(rows, 1, dtype=torch.long),
        prompt_mask=torch.ones(rows, 1, dtype=torch.long),
        mm_token_type_ids=torch.zeros(rows, 1, dtype=torch.long),
        vision=[{} for _ in range(rows)],
        completion_ids=mask.clone(),
        completion_mask=mask,
        old_logprobs=torch.zeros(rows, width),
        truncated=torch.zeros(rows, dtype=torch.bool),
        texts=list(texts),
    )


def boxed(answer: str | int) -> str:
    return f"My reasoning. \\boxed{{{answer}}}"
