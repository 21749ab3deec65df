"""Playing a batch of games with one policy, turn by turn, and turning the outcome into trainable completions.

Every game in the batch has the same number of players and rounds, so turn t of round r is one `sample` call
for all games (each game's speaker at that turn); the votes of every civilian of every game, G samples each,
are one more call. Only the active stage's completions are returned for training; the other stage is played
without gradient to supply its data (clue steps need votes to score clues; decision steps need clues to vote on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.config import GameConfig, RewardConfig
from training.game import ClueTurn, Game, Role, Transcript, clue_turns
from training.parsing import Vote, parse_clue, parse_vote
from training.prompts import clue_messages, judge_messages, vote_messages
from training.rewards import RoleBaselines, clue_rewards, decision_rewards, group_advantages, spy_identified
from training.rollout import Completions, Sampler
from training.scheduler import Stage

JUDGE = "judge"
"""The voter name of the release's judge prompt (`voters: judge`), which sits in no seat."""


@dataclass(frozen=True)
class PlayedGame:
    """One game played to the vote and scored, whatever the stage: the game's row of `games.jsonl`.

    Per-seat tuples are in seat order (index k - 1 for seat k); per-vote tuples are in the order the votes were
    sampled: voter by voter (civilians in seat order, or the judge), G samples each.
    """

    game: Game
    transcript: Transcript
    """Every clue turn, in speaking order."""
    voters: tuple[str, ...]
    """Per vote: the voter's seat as text, or `JUDGE`."""
    votes: tuple[Vote, ...]
    """Per vote: the parsed vote."""
    vote_texts: tuple[str, ...]
    """Per vote: the reply it was parsed from."""
    clue_rewards: tuple[float, ...]
    """Per seat: the zero-sum clue reward from this game's votes."""
    clue_advantages: tuple[float, ...]
    """Per seat: `clue_rewards - b_role` with the role baselines as they were before this step (RAE)."""
    vote_rewards: tuple[float, ...]
    """Per vote: the verifiable decision reward."""
    vote_advantages: tuple[float, ...]
    """Per vote: the reward normalised within its group of G samples of one prompt."""

    @property
    def identified(self) -> bool:
        """Whether the votes identified the spy (acc_t counts these)."""
        return spy_identified(self.votes, self.game.spy_seat, self.game.num_players)


@dataclass(frozen=True)
class GameStats:
    """What one step's games tell, whatever the stage: counts (which add up across processes) and means."""

    games: int
    identified: int
    """Games whose votes identified the spy."""
    votes: int
    na_votes: int
    """Votes that were N/A."""
    invalid_votes: int
    """Votes that did not parse (neither a seat in range nor N/A)."""
    clue_valid_rate: float
    """Fraction of clue turns with a usable `\\boxed{}` clue."""
    reward_spy: float
    """Mean clue-stage reward of the spies."""
    reward_civilian: float
    """Mean clue-stage reward of the civilians."""
    reward_vote: float
    """Mean decision-stage reward per vote."""
    clue_tokens: float
    """Mean tokens per clue completion."""
    vote_tokens: float
    """Mean tokens per vote completion."""
    truncated: int
    """Completions of either stage cut off at `max_new_tokens` without an end-of-turn token."""
    generated_tokens: int
    """Tokens sampled in the step, both stages."""


@dataclass
class Trajectory:
    """One step's trainable completions, each with its advantage, the played games and their statistics.

    `chunks` holds one entry per `sample` call whose completions train in this stage: clue turns in a clue step
    (one chunk per turn, one row per game), the votes in a decision step. Per chunk: `Completions` with B_i rows
    and `advantages` `[B_i]`.
    """

    stage: Stage
    chunks: list[tuple[Completions, torch.Tensor]]
    games: list[PlayedGame]
    baselines_before: dict[Role, float]
    """The role baselines the clue advantages were computed with."""
    stats: GameStats

    @property
    def seat_rewards(self) -> list[float]:
        """Clue reward of every seat of every game (game-major), for the RAE update."""
        return [reward for played in self.games for reward in played.clue_rewards]

    @property
    def seat_roles(self) -> list[Role]:
        """The role of each entry of `seat_rewards`."""
        return [played.game.role(seat) for played in self.games for seat in range(1, played.game.num_players + 1)]


@dataclass
class _CluePhase:
    transcripts: list[Transcript]
    turns: list[tuple[Completions, list[int]]]  # per sample call: completions [B_games] and the speaking seats


@dataclass
class _VotePhase:
    completions: Completions  # [B_votes]: voter by voter, game by game, G samples each
    voters: list[list[str]]  # per game, per vote
    votes: list[list[Vote]]  # per game, per vote
    texts: list[list[str]]  # per game, per vote


def play_games(
    sampler: Sampler,
    games: Sequence[Game],
    *,
    stage: Stage,
    num_samples: int,
    game_config: GameConfig,
    reward_config: RewardConfig,
    baselines: RoleBaselines,
) -> Trajectory:
    """Play `games` to the vote and return the completions of `stage` with their advantages.

    Clue advantages are `r - b_role` with the baselines as they are; the caller updates the baselines after a
    clue step (RAE, Alg. 1), across all processes' games. Vote advantages are normalised per group of
    `num_samples` samples of one prompt.
    """
    clues = _play_clue_rounds(sampler, games)
    voting = _play_votes(sampler, games, clues.transcripts, num_samples, game_config.voters)
    played = _score(games, clues, voting, num_samples, reward_config, baselines)
    if stage is Stage.DECISION:
        advantages = [advantage for game in played for advantage in game.vote_advantages]
        chunks = [(voting.completions, torch.tensor(advantages, dtype=torch.float32))]
    else:
        chunks = [
            (completions, _seat_values([game.clue_advantages for game in played], seats))
            for completions, seats in clues.turns
        ]
    return Trajectory(
        stage=stage,
        chunks=chunks,
        games=played,
        baselines_before=dict(baselines.values),
        stats=_game_stats(played, clues, voting),
    )


def _seat_values(per_game: Sequence[Sequence[float]], seats: Sequence[int]) -> torch.Tensor:
    """[B_games] the value of the seat that spoke in each game's row of one clue turn."""
    return torch.tensor([values[seat - 1] for values, seat in zip(per_game, seats, strict=True)], dtype=torch.float32)


def _play_clue_rounds(sampler: Sampler, games: Sequence[Game]) -> _CluePhase:
    """Every clue turn of every round; turn t of round r is one `sample` call across all games."""
    transcripts = [Transcript() for _ in games]
    turns = []
    for round_number in range(1, games[0].rounds + 1):
        orders = [clue_turns(game, round_number) for game in games]
        for turn in range(games[0].num_players):
            seats = [order[turn] for order in orders]
            prompts = [
                clue_messages(game, seat, round_number, transcript)
                for game, seat, transcript in zip(games, seats, transcripts)
            ]
            completions = sampler.sample(prompts)
            for transcript, seat, text in zip(transcripts, seats, completions.texts):
                clue = parse_clue(text)
                transcript.add(ClueTurn(round_number, seat, clue.clue, clue.reasoning, clue.valid, text))
            turns.append((completions, seats))
    return _CluePhase(transcripts=transcripts, turns=turns)


def _play_votes(
    sampler: Sampler, games: Sequence[Game], transcripts: Sequence[Transcript], num_samples: int, voters: str
) -> _VotePhase:
    """G votes per civilian of every game (or G judge verdicts per game), all in one `sample` call.

    Rows are grouped by prompt: the G samples of one prompt are consecutive (the groups of the advantages), and
    share one prefill of their prompt.
    """
    prompts, owners, names = [], [], []
    for index, (game, transcript) in enumerate(zip(games, transcripts)):
        if voters == "judge":
            voter_prompts, voter_names = [judge_messages(game, transcript)], [JUDGE]
        else:
            voter_prompts = [vote_messages(game, seat, transcript) for seat in game.civilian_seats]
            voter_names = [str(seat) for seat in game.civilian_seats]
        prompts.extend(voter_prompts)
        owners.extend([index] * len(voter_prompts) * num_samples)
        names.extend(name for name in voter_names for _ in range(num_samples))
    completions = sampler.sample(prompts, num_samples=num_samples)
    phase = _VotePhase(completions, [[] for _ in games], [[] for _ in games], [[] for _ in games])
    for owner, name, text in zip(owners, names, completions.texts, strict=True):
        phase.voters[owner].append(name)
        phase.votes[owner].append(parse_vote(text, games[owner].num_players))
        phase.texts[owner].append(text)
    return phase


def _score(
    games: Sequence[Game],
    clues: _CluePhase,
    voting: _VotePhase,
    num_samples: int,
    reward_config: RewardConfig,
    baselines: RoleBaselines,
) -> list[PlayedGame]:
    """Rewards and advantages of both stages for every game (each game's votes are whole groups of G)."""
    played = []
    for index, game in enumerate(games):
        votes = voting.votes[index]
        seat_rewards = clue_rewards(
            votes, game.spy_seat, game.num_players, reward_config, samples_per_voter=num_samples
        )
        roles = [game.role(seat) for seat in range(1, game.num_players + 1)]
        vote_rewards = decision_rewards(votes, game.spy_seat, reward_config)
        played.append(
            PlayedGame(
                game=game,
                transcript=clues.transcripts[index],
                voters=tuple(voting.voters[index]),
                votes=tuple(votes),
                vote_texts=tuple(voting.texts[index]),
                clue_rewards=tuple(seat_rewards),
                clue_advantages=tuple(baselines.advantages(seat_rewards, roles)),
                vote_rewards=tuple(vote_rewards),
                vote_advantages=tuple(group_advantages(vote_rewards, num_samples)),
            )
        )
    return played


def _game_stats(played: Sequence[PlayedGame], clues: _CluePhase, voting: _VotePhase) -> GameStats:
    all_votes = [vote for game in played for vote in game.votes]
    clue_turns_done = [turn for game in played for turn in game.transcript.turns]
    by_role = {role: [] for role in Role}
    for game in played:
        for seat, reward in enumerate(game.clue_rewards, 1):
            by_role[game.game.role(seat)].append(reward)
    clue_completions = [completions for completions, _ in clues.turns]
    clue_lengths = torch.cat([completions.completion_lengths for completions in clue_completions]).float()
    vote_lengths = voting.completions.completion_lengths.float()
    truncated = sum(int(completions.truncated.sum()) for completions in [*clue_completions, voting.completions])
    return GameStats(
        games=len(played),
        identified=sum(game.identified for game in played),
        votes=len(all_votes),
        na_votes=sum(vote.na for vote in all_votes),
        invalid_votes=sum(not vote.valid for vote in all_votes),
        clue_valid_rate=sum(turn.valid for turn in clue_turns_done) / len(clue_turns_done),
        reward_spy=float(np.mean(by_role[Role.SPY])),
        reward_civilian=float(np.mean(by_role[Role.CIVILIAN])),
        reward_vote=float(np.mean([reward for game in played for reward in game.vote_rewards])),
        clue_tokens=float(clue_lengths.mean()),
        vote_tokens=float(vote_lengths.mean()),
        truncated=truncated,
        generated_tokens=int(clue_lengths.sum() + vote_lengths.sum()),
    )
