"""Chat messages for every turn: clue turns, civilians' votes and the release's judge, in the Qwen-VL format.

Each message list is `[system, user]`; the user's content is the player's image, then text. A player sees the
rules, its own role, the public clues so far and its own earlier private reasoning, never another player's
reasoning. Domains differ only in `Game.difference_kind`, the words for how the spy's image differs.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from training.game import Game, Role, Transcript

Message = dict[str, Any]

RULES = (
    'You are playing the game "Who is the spy?" with {players} players, numbered 1 to {players}. '
    "{civilians} players are civilians and see the same image; 1 player is the spy and sees an image that differs "
    "from it: {difference}. Every player is told their own role but not the others' roles; the spy does not know "
    "what differs. The game has {rounds} clue round(s): in each round every player, in turn, thinks privately and "
    "then gives a one-sentence public clue about their own image. After the clue rounds the civilians vote on who "
    "the spy is. The civilians win if the spy gets the most votes; the spy wins by escaping suspicion."
)
CIVILIAN_ADVICE = (
    "You are a civilian. Give a specific detail of your image that nobody has mentioned yet, so that the other "
    "civilians recognise you, and watch for clues that do not fit your image: they may come from the spy."
)
SPY_ADVICE = (
    "You are the spy. You do not know what differs in your image, so give a plausible clue that fits the clues "
    "so far, stay vague about details that might differ, and do not reveal that you are the spy."
)
CLUE_FORMAT = "Think step by step first, then end your answer with your one-sentence clue in \\boxed{...}."
VOTE_FORMAT = (
    "Compare every clue with the image. Think step by step, then end your answer with the number of the player "
    "you believe is the spy in \\boxed{...} (the number alone), or \\boxed{N/A} if you are not sure. "
    "A wrong vote is worse than N/A."
)


def clue_messages(game: Game, seat: int, round: int, transcript: Transcript) -> list[Message]:
    """The messages for `seat`'s clue in 1-based `round`, given the turns spoken before it."""
    if not 1 <= round <= game.rounds:
        raise ValueError(f"game {game.pair_id}: round {round} does not exist (rounds are 1..{game.rounds})")
    player = game.player(seat)
    advice = SPY_ADVICE if player.role is Role.SPY else CIVILIAN_ADVICE
    text = "\n\n".join(
        [
            f"You are player {seat}. {advice}",
            _clue_history(transcript),
            *_own_reasoning(transcript, seat),
            f"It is round {round} of {game.rounds}, and your turn to give a clue. {CLUE_FORMAT}",
        ]
    )
    return _messages(game, player.image, text)


def vote_messages(game: Game, seat: int, transcript: Transcript) -> list[Message]:
    """The messages for civilian `seat`'s vote after the clue rounds (the spy does not vote)."""
    player = game.player(seat)
    if player.role is not Role.CIVILIAN:
        raise ValueError(f"game {game.pair_id}: seat {seat} is the spy, and the spy does not vote")
    text = "\n\n".join(
        [
            f"You are player {seat}. You are a civilian. The clue rounds are over; it is time to vote.",
            _clue_history(transcript),
            *_own_reasoning(transcript, seat),
            f"Which player is the spy (not you, player {seat})? {VOTE_FORMAT}",
        ]
    )
    return _messages(game, player.image, text)


def judge_messages(game: Game, transcript: Transcript) -> list[Message]:
    """The release's single judge prompt: the civilian image and every public clue, no role, no reasoning."""
    text = "\n\n".join(
        [
            "You are the judge, not a player. The image is the one the civilians see. The clue rounds are over.",
            _clue_history(transcript),
            f"Which player is the spy? {VOTE_FORMAT}",
        ]
    )
    return _messages(game, game.civilian_image, text)


def _messages(game: Game, image: Image.Image, text: str) -> list[Message]:
    rules = RULES.format(
        players=game.num_players,
        civilians=game.num_players - 1,
        difference=game.difference_kind,
        rounds=game.rounds,
    )
    return [
        {"role": "system", "content": [{"type": "text", "text": rules}]},
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]},
    ]


def _clue_history(transcript: Transcript) -> str:
    clues = transcript.public_clues()
    if not clues:
        return "Clues so far: none yet."
    return "Clues so far:\n" + "\n".join(f"- Round {r}, player {seat}: {clue}" for r, seat, clue in clues)


def _own_reasoning(transcript: Transcript, seat: int) -> list[str]:
    """Own earlier reasoning, as a list of zero or one paragraphs."""
    own = transcript.reasoning_of(seat)
    if not own:
        return []
    lines = "\n".join(f"- Round {r}: {reasoning}" for r, reasoning in own)
    return [f"Your private reasoning from your earlier turns (only you can see it):\n{lines}"]
