"""Tiny random VLMs of the real architectures with a small offline BPE tokenizer, for tests and CPU smoke runs.

Qwen2-VL, Qwen2.5-VL, Qwen3-VL and InternVL3 (transformers' native classes): each runs the real `transformers`
model code (vision tower, RoPE, chat template, processor) at a size that trains a step in a fraction of a second
on one CPU thread, and needs no download. The folder is laid out like the family's Hub checkpoints: weights,
`config.json`, `generation_config.json`, the tokenizer files, the image processor's `preprocessor_config.json`
(naming the family's processor class) and `chat_template.jinja`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from training.tiny_configs import END_OF_TEXT, TINY_SPECS, TinySpec

DEFAULT_FAMILY = "qwen2_5_vl"

# Qwen2's pre-tokenizer pattern: contractions, letters, single digits, punctuation runs, newlines, spaces.
QWEN_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Text like the game's prompts and answers, for the tokenizer to learn merges from.
TOKENIZER_CORPUS = """
You are playing "Who is the spy?". There are 5 players. Player 3 is the spy and sees a slightly different image.
Each civilian sees the same image. Describe one specific detail of your image in one sentence.
Think step by step, then give your clue in \\boxed{}. The bar for March is taller than the bar for April.
The pie chart has a red slice labelled Sales. The line rises from 10 to 42 between 2019 and 2023.
There is a small blue metal cube behind a large green rubber cylinder. A yellow sphere sits on the left.
Vote for the player you think is the spy: answer \\boxed{2} or \\boxed{N/A} if you are not sure.
Player 1 said: the title reads Revenue by Quarter. Player 2 said: the legend shows three colours.
I think player 4 is the spy because the clue about the green bar does not match my image. \\boxed{4}
Round 1 of 2. Your role: civilian. Your image is shown above. Earlier clues: none yet.
""".strip()


def train_tokenizer(spec: TinySpec, vocab_size: int = 1024):
    """Train a byte-level BPE on the game corpus and wrap it as a Qwen2 tokenizer with the family's control tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator([TOKENIZER_CORPUS] * 4, trainer=trainer)
    vocab, merges = _vocab_and_merges(bpe)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        extra_special_tokens=dict(spec.named_tokens) or None,
    )
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [END_OF_TEXT, *spec.control_tokens]}, replace_extra_special_tokens=False
    )
    tokenizer.eos_token = spec.eos_token
    tokenizer.chat_template = spec.chat_template
    return tokenizer


def _vocab_and_merges(bpe) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The trained vocabulary and merges in order, read from the tokenizer's JSON (the Python API hides merges)."""
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in model["merges"]]
    return model["vocab"], merges


def make_tiny_model(out: str | Path, *, family: str = DEFAULT_FAMILY, seed: int = 0, format_steps: int = 150) -> Path:
    """Write a tiny model of `family` (a `config.model_type` of `TINY_SPECS`) to `out` and return it.

    Weights are random, then taught the game's answer format for `format_steps` supervised steps (0 = purely
    random). The folder loads with `training.model.load_model_and_processor` like any Hub checkpoint.

    Raises:
        ConfigError: `family` is not one of `TINY_SPECS`, or `out` is a folder with files in it (a model folder's
            files from elsewhere, such as another processor config, would mix with these).
    """
    from transformers import AutoModelForImageTextToText
    from transformers.utils import CHAT_TEMPLATE_FILE, PROCESSOR_NAME
    from transformers.utils import logging as hf_logging

    from datagen.errors import ConfigError

    spec, out = TINY_SPECS.get(family), Path(out)
    if spec is None:
        raise ConfigError(f"--family {family!r}: tiny models exist for {', '.join(TINY_SPECS)}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder; write the tiny model into a new one")
    hf_logging.disable_progress_bar()
    tokenizer = train_tokenizer(spec)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (END_OF_TEXT, *spec.control_tokens)}
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(spec.config(ids, _round_up(len(tokenizer), 64)))
    if format_steps:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a model this small gains nothing from threads, and loses much on a busy machine
        try:
            teach_format(model, tokenizer, steps=format_steps, seed=seed)
        finally:
            torch.set_num_threads(threads)
    model.generation_config.eos_token_id = ids[spec.eos_token]
    model.generation_config.pad_token_id = ids[END_OF_TEXT]
    model.save_pretrained(out)
    # The processor's files as a Hub checkpoint of the family has them, naming the family's real processor class.
    tokenizer._set_processor_class(spec.processor_class)
    tokenizer.save_pretrained(out)
    spec.image_processor().save_pretrained(out)
    (out / CHAT_TEMPLATE_FILE).write_text(spec.chat_template)
    if spec.processor_options:
        options = {**spec.processor_options, "processor_class": spec.processor_class}
        (out / PROCESSOR_NAME).write_text(json.dumps(options, indent=2) + "\n")
    return out


def _round_up(value: int, multiple: int) -> int:
    """Pad the vocabulary like real checkpoints do, so the unused-id suppression is exercised."""
    return -(-value // multiple) * multiple


FORMAT_SUBJECTS = ("the red bar", "a blue cube", "the title", "the legend", "a green slice", "the line", "a sphere")


def format_examples(rng: np.random.Generator, count: int) -> list[str]:
    """Replies in the answer formats: a reasoning sentence, then `\\boxed{seat}`, `\\boxed{N/A}`, a clue, or the
    letter of a choice (the "what changed?" questions)."""
    replies = []
    for _ in range(count):
        subject = FORMAT_SUBJECTS[rng.integers(len(FORMAT_SUBJECTS))]
        kind = rng.integers(4)
        if kind == 0:
            seat = int(rng.integers(1, 6))
            replies.append(f"Player {seat} said {subject}. \\boxed{{{seat}}}")
        elif kind == 1:
            replies.append(f"I am not sure about {subject}. \\boxed{{N/A}}")
        elif kind == 2:
            replies.append(f"My image shows {subject}. \\boxed{{There is {subject}.}}")
        else:
            letter = "ABCD"[rng.integers(4)]
            replies.append(f"The change is {subject}. \\boxed{{{letter}}}")
    return replies


def teach_format(model, tokenizer, *, steps: int, seed: int) -> None:
    """A few supervised steps on game-format replies, so that a random model's samples parse sometimes.

    Without this, a random model never closes a `\\boxed{}`: every vote is invalid, every reward equal and every
    advantage zero, and a smoke run exercises no learning at all.
    """
    rng = np.random.default_rng(seed)
    lines = TOKENIZER_CORPUS.splitlines()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        questions = [[{"role": "user", "content": lines[rng.integers(len(lines))]}] for _ in range(16)]
        prompts = [tokenizer.apply_chat_template(q, tokenize=False, add_generation_prompt=True) for q in questions]
        replies = [reply + "<|im_end|>" for reply in format_examples(rng, len(prompts))]
        prompt_ids = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]
        reply_ids = [tokenizer(reply, add_special_tokens=False)["input_ids"] for reply in replies]
        width = max(len(p) + len(r) for p, r in zip(prompt_ids, reply_ids))
        input_ids = torch.full((len(prompts), width), tokenizer.pad_token_id)
        labels = torch.full((len(prompts), width), -100)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, (prompt, reply) in enumerate(zip(prompt_ids, reply_ids)):
            ids = prompt + reply
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, len(prompt) : len(ids)] = torch.tensor(reply)
            attention[row, : len(ids)] = 1
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
