"""`games.jsonl`: every game of every step as played and scored, the record people debug self-play with.

One JSON object per game per step. Keys: `step`, `stage` (the trained stage), `pair_id`, `domain`, `spy` (1-based
seat), `spy_variant`, `order` (speaking order per round), `clues` (per round: `{"<seat>": {"text", "clue",
"valid"}}`), `votes` (`{"<voter>": [each sample's parsed vote: a seat, "N/A", or null when invalid]}`, the voter
being a civilian's seat or "judge"), `vote_texts` (the replies, same shape), `identified` (whether the votes
identified the spy), `clue_rewards` (`{"<seat>": float}`), `baselines_before` (`{"spy", "civilian"}`: the RAE
baselines the clue advantages were computed with), `clue_advantages` (`{"<seat>": float}`, the advantage of that
seat's clue turns; null in decision steps, which train no clue), `vote_rewards` and `vote_advantages`
(`{"<voter>": [float per sample]}`; the advantages null in clue steps, which train no vote), `description` (the
pair's true change, never shown to players).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datagen.errors import ConfigError
from training.game import Role
from training.parsing import Vote
from training.scheduler import Stage
from training.selfplay import PlayedGame

GAMES_FILE = "games.jsonl"
NA_VOTE = "N/A"


def game_record(step: int, stage: Stage, played: PlayedGame, baselines_before: Mapping[Role, float]) -> dict[str, Any]:
    """The `games.jsonl` object of one game of `step`, trained in `stage`."""
    game = played.game
    clues: list[dict[str, Any]] = [{} for _ in range(game.rounds)]
    for turn in played.transcript.turns:
        clues[turn.round - 1][str(turn.seat)] = {"text": turn.text, "clue": turn.clue, "valid": turn.valid}
    seats = range(1, game.num_players + 1)
    return {
        "step": step,
        "stage": stage.value,
        "pair_id": game.pair_id,
        "domain": game.domain,
        "spy": game.spy_seat,
        "spy_variant": game.spy_variant.value,
        "order": [list(order) for order in game.speaking_orders],
        "clues": clues,
        "votes": _per_voter(played.voters, [vote_json(vote) for vote in played.votes]),
        "vote_texts": _per_voter(played.voters, played.vote_texts),
        "identified": played.identified,
        "clue_rewards": {str(seat): reward for seat, reward in zip(seats, played.clue_rewards)},
        "baselines_before": {"spy": baselines_before[Role.SPY], "civilian": baselines_before[Role.CIVILIAN]},
        "clue_advantages": (
            {str(seat): advantage for seat, advantage in zip(seats, played.clue_advantages)}
            if stage is Stage.CLUE
            else None
        ),
        "vote_rewards": _per_voter(played.voters, played.vote_rewards),
        "vote_advantages": _per_voter(played.voters, played.vote_advantages) if stage is Stage.DECISION else None,
        "description": game.description,
    }


def vote_json(vote: Vote) -> int | str | None:
    """A parsed vote as `games.jsonl` writes it: the seat, "N/A", or null when invalid."""
    if vote.na:
        return NA_VOTE
    return vote.seat


def _per_voter(voters: Sequence[str], values: Sequence[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for voter, value in zip(voters, values, strict=True):
        grouped.setdefault(voter, []).append(value)
    return grouped


def read_games(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of a run's `games.jsonl`, in file order.

    Raises:
        ConfigError: the run folder has no `games.jsonl` (e.g. trained with `--log-games 0`) or a line is broken.
    """
    path = Path(run_dir) / GAMES_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {GAMES_FILE} (not a run folder, or trained with --log-games 0)")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: line {number} is not JSON ({error.msg})") from error
    return records
