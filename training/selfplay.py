"""Playing a batch of games with one policy, turn by turn, and turning the outcome into trainable completions.

Every game in the batch has the same number of players and rounds, so turn t of round r is one `generate` call
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
from training.rewards import (
    RoleBaselines,
    clue_rewards,
    decision_rewards,
    game_accuracy,
    group_advantages,
    na_rate,
)
from training.rollout import Completions, Sampler
from training.scheduler import Stage


@dataclass(frozen=True)
class GameStats:
    """What one step's games tell, whatever the stage (all rates in [0, 1])."""

    games: int
    accuracy: float
    """acc_t: fraction of games whose majority vote hits the spy."""
    na_rate: float
    """na_t: fraction of votes that are N/A."""
    vote_valid_rate: float
    """Fraction of votes that parsed (a seat in range or N/A)."""
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
    generated_tokens: int
    """Tokens sampled in the step, both stages."""


@dataclass
class Trajectory:
    """One step's trainable completions, each with its advantage, and the games' statistics.

    `chunks` holds one entry per `generate` call whose completions train in this stage: clue turns in a clue
    step (one chunk per turn), the votes in a decision step. Per chunk: `Completions` with B_i rows and
    `advantages` `[B_i]`.
    """

    stage: Stage
    chunks: list[tuple[Completions, torch.Tensor]]
    stats: GameStats
    seat_rewards: list[float]
    """Clue-stage reward of every seat of every game (game-major), whatever the stage: for the RAE update."""
    seat_roles: list[Role]
    """The role of each entry of `seat_rewards`."""

    @property
    def num_completions(self) -> int:
        """Completions that get gradient this step."""
        return sum(len(completions) for completions, _ in self.chunks)

    @property
    def num_tokens(self) -> int:
        """Completion tokens that get gradient this step."""
        return sum(int(completions.completion_mask.sum()) for completions, _ in self.chunks)


@dataclass
class _CluePhase:
    transcripts: list[Transcript]
    turns: list[tuple[Completions, list[int]]]  # per generate call: completions [B_games] and the speaking seats


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

    Clue advantages are `r - b_role` with the baselines as they are; the caller updates the baselines from
    `Trajectory.seat_rewards` after a clue step (RAE, Alg. 1), across all processes' games.
    """
    clues = _play_clue_rounds(sampler, games)
    votes_completions, votes = _play_votes(sampler, games, clues.transcripts, num_samples, game_config.voters)
    players = games[0].num_players
    vote_rewards = [
        decision_rewards(game_votes, game.spy_seat, reward_config) for game, game_votes in zip(games, votes)
    ]
    seat_rewards = [
        clue_rewards(game_votes, game.spy_seat, players, reward_config, samples_per_voter=num_samples)
        for game, game_votes in zip(games, votes)
    ]
    roles = [[game.role(seat) for seat in range(1, players + 1)] for game in games]
    stats = _game_stats(games, clues, votes_completions, votes, vote_rewards, seat_rewards, roles)
    flat_seat_rewards = [reward for rewards in seat_rewards for reward in rewards]
    flat_roles = [role for game_roles in roles for role in game_roles]
    if stage is Stage.DECISION:
        flat_rewards = [reward for rewards in vote_rewards for reward in rewards]
        advantages = torch.tensor(group_advantages(flat_rewards, num_samples), dtype=torch.float32)
        chunks = [(votes_completions, advantages)]
    else:
        seat_advantages = np.asarray(baselines.advantages(flat_seat_rewards, flat_roles)).reshape(len(games), players)
        chunks = [
            (completions, torch.tensor([seat_advantages[g, seat - 1] for g, seat in enumerate(seats)]).float())
            for completions, seats in clues.turns
        ]
    return Trajectory(stage=stage, chunks=chunks, stats=stats, seat_rewards=flat_seat_rewards, seat_roles=flat_roles)


def _play_clue_rounds(sampler: Sampler, games: Sequence[Game]) -> _CluePhase:
    """Every clue turn of every round; turn t of round r is one `generate` call across all games."""
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
                transcript.add(ClueTurn(round_number, seat, clue.clue, clue.reasoning, clue.valid))
            turns.append((completions, seats))
    return _CluePhase(transcripts=transcripts, turns=turns)


def _play_votes(
    sampler: Sampler, games: Sequence[Game], transcripts: Sequence[Transcript], num_samples: int, voters: str
) -> tuple[Completions, list[list[Vote]]]:
    """G votes per civilian of every game (or G judge verdicts per game), all in one `generate` call.

    Rows are grouped by prompt: the G samples of one prompt are consecutive (the groups of the advantages), and
    share one prefill of their prompt.
    """
    prompts, owners = [], []
    for index, (game, transcript) in enumerate(zip(games, transcripts)):
        if voters == "judge":
            voter_prompts = [judge_messages(game, transcript)]
        else:
            voter_prompts = [vote_messages(game, seat, transcript) for seat in game.civilian_seats]
        prompts.extend(voter_prompts)
        owners.extend([index] * len(voter_prompts) * num_samples)
    completions = sampler.sample(prompts, num_samples=num_samples)
    votes: list[list[Vote]] = [[] for _ in games]
    for owner, text in zip(owners, completions.texts):
        votes[owner].append(parse_vote(text, games[owner].num_players))
    return completions, votes


def _game_stats(
    games: Sequence[Game],
    clues: _CluePhase,
    votes_completions: Completions,
    votes: list[list[Vote]],
    vote_rewards: list[list[float]],
    seat_rewards: list[list[float]],
    roles: list[list[Role]],
) -> GameStats:
    all_votes = [vote for game_votes in votes for vote in game_votes]
    clue_turns_done = [turn for transcript in clues.transcripts for turn in transcript.turns]
    by_role = {role: [] for role in Role}
    for rewards, game_roles in zip(seat_rewards, roles):
        for reward, role in zip(rewards, game_roles):
            by_role[role].append(reward)
    clue_lengths = torch.cat([completions.completion_lengths for completions, _ in clues.turns]).float()
    vote_lengths = votes_completions.completion_lengths.float()
    return GameStats(
        games=len(games),
        accuracy=game_accuracy(votes, [game.spy_seat for game in games], games[0].num_players),
        na_rate=na_rate(all_votes),
        vote_valid_rate=sum(vote.valid for vote in all_votes) / len(all_votes),
        clue_valid_rate=sum(turn.valid for turn in clue_turns_done) / len(clue_turns_done),
        reward_spy=float(np.mean(by_role[Role.SPY])),
        reward_civilian=float(np.mean(by_role[Role.CIVILIAN])),
        reward_vote=float(np.mean([reward for rewards in vote_rewards for reward in rewards])),
        clue_tokens=float(clue_lengths.mean()),
        vote_tokens=float(vote_lengths.mean()),
        generated_tokens=int(clue_lengths.sum() + vote_lengths.sum()),
    )
