"""`vzero eval`: one or two models play the same held-out games and answer the same "what changed?" questions.

No training: games are played as a training step plays them (`selfplay.play_games`: the recipe's game, prompts,
sampling and parsing), and each game's outcome is kept per game, with the pair's domain and difficulty, for the
statistics in `eval_stats`. Both models see the same pairs, seats, speaking orders and sampling seeds, so that
their difference is measured on paired games.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from datagen.errors import ConfigError, DatasetError, InputError
from datagen.loading import load_pairs, public_name
from datagen.qa import Question, domain_questions, make_questions, pair_facts, pair_rng
from training.game import Game, make_game
from training.model import check_model_source, load_model_and_processor, suppressed_token_ids
from training.questions import chosen_choice, question_messages
from training.recipe import Recipe
from training.rewards import RoleBaselines
from training.rollout import ModelSampler, SamplingConfig
from training.scheduler import Stage
from training.selfplay import PlayedGame, play_games

MAX_MODELS = 2


@dataclass(frozen=True)
class EvalOptions:
    """One evaluation: which models, which pairs, how many games, and the recipe that says how a game is played."""

    models: tuple[str, ...]
    """One model, or two to compare (the second against the first)."""
    data: str
    """A pair dataset folder or Hub id; its pairs should be held out from training."""
    out: Path
    """Folder for `eval.json` and `eval.md`."""
    recipe: Recipe
    """The game, rewards and sampling (temperature, G, max_new_tokens, max_pixels, games per batch)."""
    games: int = 64
    """Games to play, each on its own pair."""
    seed: int = 0
    """Picks the pairs, seats, speaking orders, questions and sampling seeds."""
    config: str | None = None
    """One domain of a merged dataset (default: all)."""
    questions: bool = True
    """Also ask the "what changed?" questions about the same pairs."""


@dataclass(frozen=True)
class EvalItem:
    """One held-out pair: its game (the same for every model) and its questions."""

    game: Game
    difficulty: float
    questions: tuple[tuple[Question, tuple[Any, ...]], ...]
    """Each question with its images, in order."""


@dataclass(frozen=True)
class GameRow:
    """One model's outcome of one game."""

    model: str
    pair_id: str
    domain: str
    difficulty: float
    identified: int
    """1 when the civilians' votes identified the spy (their arg-max over seats and N/A; a tie is a miss)."""
    votes: int
    na_votes: int
    valid_votes: int
    clue_turns: int
    valid_clues: int
    clue_words: int
    """Words in the game's valid public clues."""


@dataclass(frozen=True)
class QuestionRow:
    """One model's answer to one question."""

    model: str
    pair_id: str
    domain: str
    difficulty: float
    kind: str
    answer: str
    chosen: str | None
    correct: int


def model_labels(models: Sequence[str]) -> list[str]:
    """How reports name the models (`public_name`), told apart even when their folders share a name."""
    labels = [public_name(model) for model in models]
    return labels if len(set(labels)) == len(labels) else [f"{label} #{i + 1}" for i, label in enumerate(labels)]


def check_options(options: EvalOptions) -> Any:
    """Validate everything before any model loads; the pair dataset.

    Raises:
        ConfigError: a bad recipe, model path, number of models or games (more games than pairs included).
        DatasetError: the data is not a pair dataset.
    """
    options.recipe.validate()
    if not 1 <= len(options.models) <= MAX_MODELS:
        raise ConfigError(f"--model: give one model, or two to compare; got {len(options.models)}")
    for model in options.models:
        check_model_source(model)
    if isinstance(options.games, bool) or not isinstance(options.games, int) or options.games < 1:
        raise ConfigError(f"--games must be an integer >= 1, got {options.games!r}")
    pairs = load_pairs(options.data, config=options.config)
    if options.games > len(pairs):
        raise ConfigError(
            f"--games {options.games}: {options.data} has {len(pairs)} pairs, and every game needs a pair of its "
            f"own; ask for at most {len(pairs)}"
        )
    return pairs


def eval_items(pairs: Any, options: EvalOptions) -> tuple[list[EvalItem], list[str]]:
    """The held-out items (a seeded choice of pairs) and the ids of pairs that could not make a game."""
    order = np.random.default_rng(options.seed).permutation(len(pairs))
    makers = domain_questions() if options.questions else {}
    items, skipped = [], []
    for index in order:
        if len(items) == options.games:
            break
        record = pairs[int(index)]
        try:
            game = make_game(record, options.recipe.game, np.random.default_rng([options.seed, len(items)]))
        except InputError:
            skipped.append(str(record.get("id")))
            continue
        asked = []
        if options.questions:
            facts = pair_facts(record)
            for question in make_questions(facts, pair_rng(options.seed, facts.pair_id), makers.get(facts.domain)):
                asked.append((question, tuple(record[name] for name in question.images)))
        items.append(EvalItem(game, float(record["difficulty"]), tuple(asked)))
    if not items:
        raise DatasetError(f"{options.data}: none of its pairs makes a game")
    return items, skipped


def _batches(count: int, size: int) -> list[range]:
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def _batch_seed(seed: int, part: int, batch: int) -> int:
    """The torch seed of one batch: the same for every model, so their samples share their randomness."""
    return int(np.random.SeedSequence([seed, part, batch]).generate_state(1)[0])


def play_items(
    sampler: ModelSampler, items: Sequence[EvalItem], recipe: Recipe, label: str, seed: int
) -> list[GameRow]:
    """Every item's game played by one model, `games_per_step` games per batch."""
    rows = []
    for number, batch in enumerate(_batches(len(items), recipe.rollout.games_per_step)):
        torch.manual_seed(_batch_seed(seed, 0, number))
        trajectory = play_games(
            sampler,
            [items[i].game for i in batch],
            stage=Stage.DECISION,
            num_samples=recipe.rollout.num_samples,
            game_config=recipe.game,
            reward_config=recipe.reward,
            baselines=RoleBaselines(recipe.reward.baseline_decay),
        )
        rows += [game_row(label, items[i], played) for i, played in zip(batch, trajectory.games, strict=True)]
    return rows


def game_row(label: str, item: EvalItem, played: PlayedGame) -> GameRow:
    """What one played game counts towards the statistics."""
    turns = played.transcript.turns
    return GameRow(
        model=label,
        pair_id=item.game.pair_id,
        domain=item.game.domain,
        difficulty=item.difficulty,
        identified=int(played.identified),
        votes=len(played.votes),
        na_votes=sum(vote.na for vote in played.votes),
        valid_votes=sum(vote.valid for vote in played.votes),
        clue_turns=len(turns),
        valid_clues=sum(turn.valid for turn in turns),
        clue_words=sum(len(turn.clue.split()) for turn in turns if turn.valid),
    )


def ask_items(
    sampler: ModelSampler, items: Sequence[EvalItem], batch_size: int, label: str, seed: int
) -> list[QuestionRow]:
    """Every item's questions answered by one model, one sample each, `batch_size` questions per `generate`."""
    asked = [(item, question, images) for item in items for question, images in item.questions]
    rows = []
    for number, batch in enumerate(_batches(len(asked), batch_size)):
        torch.manual_seed(_batch_seed(seed, 1, number))
        prompts = [question_messages(asked[i][1].question, asked[i][1].choices, asked[i][2]) for i in batch]
        for i, reply in zip(batch, sampler.sample(prompts).texts, strict=True):
            item, question, _ = asked[i]
            choice = chosen_choice(reply, question.choices)
            rows.append(
                QuestionRow(
                    model=label,
                    pair_id=item.game.pair_id,
                    domain=item.game.domain,
                    difficulty=item.difficulty,
                    kind=question.kind,
                    answer=question.answer,
                    chosen=choice,
                    correct=int(choice == question.answer),
                )
            )
    return rows


def evaluate_model(
    source: str, label: str, items: Sequence[EvalItem], options: EvalOptions
) -> tuple[list[GameRow], list[QuestionRow]]:
    """Load one model, play every game and ask every question; the model is released afterwards."""
    rollout = options.recipe.rollout
    on_gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if on_gpu and options.recipe.precision == "bf16" else torch.float32
    loaded = load_model_and_processor(source, dtype=dtype, max_pixels=rollout.max_pixels)
    model = loaded.model.to("cuda" if on_gpu else "cpu").eval()
    sampling = SamplingConfig(
        max_new_tokens=rollout.max_new_tokens,
        temperature=rollout.temperature,
        suppressed=tuple(suppressed_token_ids(model, loaded.processor)),
    )
    sampler = ModelSampler(model, loaded.processor, sampling)
    games = play_items(sampler, items, options.recipe, label, options.seed)
    batch_size = rollout.games_per_step * options.recipe.game.players
    questions = ask_items(sampler, items, batch_size, label, options.seed) if options.questions else []
    del sampler, model, loaded
    gc.collect()
    return games, questions


@dataclass(frozen=True)
class EvalRun:
    """Everything an evaluation measured, per game and per question, for every model."""

    labels: list[str]
    games: list[GameRow]
    questions: list[QuestionRow]
    skipped_pairs: list[str]


def run_evaluation(options: EvalOptions, *, console: Console | None = None) -> EvalRun:
    """Check the options, pick the items, and evaluate each model on them in turn."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    pairs = check_options(options)
    if options.recipe.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(options.recipe.cpu_threads)
    items, skipped = eval_items(pairs, options)
    labels = model_labels(options.models)
    games: list[GameRow] = []
    questions: list[QuestionRow] = []
    for source, label in zip(options.models, labels, strict=True):
        if console is not None:
            console.print(f"evaluating {label} on {len(items)} games ...")
        model_games, model_questions = evaluate_model(source, label, items, options)
        games += model_games
        questions += model_questions
    return EvalRun(labels, games, questions, skipped)
