"""One game of "Who is the spy?" over an image pair: seats, roles, images, speaking orders and the transcript.

Seats and rounds are numbered from 1, as players see them in prompts. Every random choice draws from the
`numpy.random.Generator` the caller passes, in a fixed order (spy image variant, spy seat, speaking orders),
so a game is a pure function of (record, config, rng state).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from PIL import Image

from datagen.errors import InputError
from datagen.registry import GENERIC_PROMPT_HINT, available_domains, prompt_hint
from training.config import GameConfig

GENERIC_DOMAIN = "generic"


class DifferenceKinds(Mapping[str, str]):
    """How the spy's image differs, per domain: the only domain-specific part of the prompts.

    A view of the installed domains' `prompt_hint`s (`datagen.registry`), so that a domain of one's own brings its
    words with it; `generic` (and any domain not installed here) gets `GENERIC_PROMPT_HINT`.
    """

    def __getitem__(self, domain: str) -> str:
        return GENERIC_PROMPT_HINT if domain == GENERIC_DOMAIN else prompt_hint(domain)

    def __iter__(self) -> Iterator[str]:
        return iter([*available_domains(), GENERIC_DOMAIN])

    def __len__(self) -> int:
        return len(available_domains()) + 1


DIFFERENCE_KINDS = DifferenceKinds()
BLANK_COLOUR = (255, 255, 255)


class Role(StrEnum):
    """A player's secret role; every player is told its own."""

    CIVILIAN = "civilian"
    SPY = "spy"


class SpyVariant(StrEnum):
    """What the spy is shown: the edited image, or one of the noise study's replacements."""

    EDITED = "edited"
    BLANK = "blank"
    IDENTICAL = "identical"


@dataclass(frozen=True)
class Player:
    """One seat of a game."""

    seat: int
    """1-based seat number, as named in prompts and votes."""
    role: Role
    """Civilian or spy."""
    image: Image.Image
    """The image this player sees (the spy's may be blank or the civilian image under noise)."""


@dataclass(frozen=True)
class Game:
    """Everything fixed before the first clue: who sits where, who sees what, who speaks when."""

    pair_id: str
    """`id` of the pair record the game was made from."""
    domain: str
    """Domain of the pair (`clevr`, `chart`, `realworld` or a user's own)."""
    civilian_image: Image.Image
    """What civilians see (RGB)."""
    spy_image: Image.Image
    """What the spy sees (RGB): the record's spy image, a blank image, or the civilian image."""
    spy_variant: SpyVariant
    """Which of the three `spy_image` is."""
    spy_seat: int
    """1-based seat of the spy, uniform over seats."""
    players: tuple[Player, ...]
    """One per seat, in seat order (`players[k - 1].seat == k`)."""
    speaking_orders: tuple[tuple[int, ...], ...]
    """Per round, the seats in the order they speak (`speaking_orders[r - 1]` for round r)."""
    difference_kind: str
    """How the spy's image differs, in words every player is told (the kind, never the actual change)."""
    description: str
    """The record's true description of the change: ground truth for analysis, never shown to players."""

    @property
    def num_players(self) -> int:
        """Players, the spy included."""
        return len(self.players)

    @property
    def rounds(self) -> int:
        """Clue rounds."""
        return len(self.speaking_orders)

    @property
    def civilian_seats(self) -> tuple[int, ...]:
        """Seats of the civilians, ascending."""
        return tuple(p.seat for p in self.players if p.role is Role.CIVILIAN)

    def player(self, seat: int) -> Player:
        """The player at 1-based `seat`; ValueError for a seat that does not exist."""
        if not 1 <= seat <= len(self.players):
            raise ValueError(f"game {self.pair_id}: seat {seat} does not exist (seats are 1..{len(self.players)})")
        return self.players[seat - 1]

    def role(self, seat: int) -> Role:
        """The role at `seat`."""
        return self.player(seat).role

    def image(self, seat: int) -> Image.Image:
        """The image `seat` sees."""
        return self.player(seat).image


@dataclass(frozen=True)
class ClueTurn:
    """One player's turn in the clue stage."""

    round: int
    """1-based round."""
    seat: int
    """1-based seat of the speaker."""
    clue: str
    """The public clue (a placeholder when the reply was unparsable)."""
    reasoning: str
    """The speaker's private reasoning; shown only to the speaker in later turns."""
    valid: bool
    """Whether the reply had a usable `\\boxed{}` clue."""
    text: str
    """The whole reply, as sampled (for transcripts; players see only the clue and their own reasoning)."""


@dataclass
class Transcript:
    """The clue stage so far: public clues in the order spoken, each with its speaker's private reasoning."""

    turns: list[ClueTurn] = field(default_factory=list)
    """Every turn so far, in speaking order across rounds."""

    def add(self, turn: ClueTurn) -> None:
        """Record the next turn."""
        self.turns.append(turn)

    def public_clues(self) -> list[tuple[int, int, str]]:
        """(round, seat, clue) of every turn so far, in speaking order: what every player may see."""
        return [(turn.round, turn.seat, turn.clue) for turn in self.turns]

    def reasoning_of(self, seat: int) -> list[tuple[int, str]]:
        """(round, reasoning) of `seat`'s own earlier turns: private to that seat."""
        return [(turn.round, turn.reasoning) for turn in self.turns if turn.seat == seat]


def difference_kind(domain: str) -> str:
    """The words for how the spy's image differs in `domain`; unknown domains get the generic wording."""
    return DIFFERENCE_KINDS[domain]


def make_game(record: Mapping[str, Any], config: GameConfig, rng: np.random.Generator) -> Game:
    """Seat a new game over one pair record (a row of `datagen.loading.load_pairs`).

    Raises:
        InputError: the record lacks a field, or its images are not images of one size.
    """
    pair_id = str(record.get("id", "<record without id>"))
    civilian, spy = _record_images(record, pair_id)
    variant, spy_image = _spy_view(civilian, spy, config, rng)
    spy_seat = int(rng.integers(1, config.players + 1))
    players = tuple(
        Player(seat, Role.SPY, spy_image) if seat == spy_seat else Player(seat, Role.CIVILIAN, civilian)
        for seat in range(1, config.players + 1)
    )
    seats = np.arange(1, config.players + 1)
    orders = tuple(
        tuple(int(s) for s in (rng.permutation(seats) if config.shuffle_order else seats)) for _ in range(config.rounds)
    )
    domain = str(record.get("domain") or GENERIC_DOMAIN)
    return Game(
        pair_id=pair_id,
        domain=domain,
        civilian_image=civilian,
        spy_image=spy_image,
        spy_variant=variant,
        spy_seat=spy_seat,
        players=players,
        speaking_orders=orders,
        difference_kind=difference_kind(domain),
        description=str(record.get("description") or ""),
    )


def clue_turns(game: Game, round: int) -> list[int]:
    """Seats in the order they speak in 1-based `round`."""
    if not 1 <= round <= game.rounds:
        raise ValueError(f"game {game.pair_id}: round {round} does not exist (rounds are 1..{game.rounds})")
    return list(game.speaking_orders[round - 1])


def _record_images(record: Mapping[str, Any], pair_id: str) -> tuple[Image.Image, Image.Image]:
    images = []
    for name in ("civilian", "spy"):
        if name not in record:
            raise InputError(pair_id, f"pair record has no {name!r} image")
        image = record[name]
        if not isinstance(image, Image.Image):
            raise InputError(pair_id, f"{name!r} is {type(image).__name__}, not a decoded PIL image")
        images.append(image.convert("RGB") if image.mode != "RGB" else image)
    civilian, spy = images
    if civilian.size != spy.size:
        raise InputError(pair_id, f"civilian image is {civilian.size} but spy image is {spy.size}; they must match")
    return civilian, spy


def _spy_view(
    civilian: Image.Image, spy: Image.Image, config: GameConfig, rng: np.random.Generator
) -> tuple[SpyVariant, Image.Image]:
    # Always one draw, whatever the rates, so that the seat and orders of game i do not depend on them.
    draw = rng.random()
    if draw < config.blank_spy_rate:
        return SpyVariant.BLANK, Image.new("RGB", civilian.size, BLANK_COLOUR)
    if draw < config.blank_spy_rate + config.identical_spy_rate:
        return SpyVariant.IDENTICAL, civilian
    return SpyVariant.EDITED, spy
