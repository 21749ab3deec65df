"""A tiny, randomly initialised Qwen2.5-VL with a small offline BPE tokenizer, for tests and CPU smoke runs.

It runs the real `transformers` model code (vision tower, M-RoPE, chat template, processor) at a size that
trains a step in a fraction of a second on one CPU thread, and it needs no download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

# Qwen's control tokens, in Qwen's order, so that the ids keep Qwen's relative layout.
QWEN_CONTROL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
END_OF_TEXT = "<|endoftext|>"

# Qwen2.5-VL's chat template (images as `<|vision_start|><|image_pad|><|vision_end|>`).
QWEN_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

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


def train_tokenizer(vocab_size: int = 1024):
    """Train a byte-level BPE on the game corpus and wrap it as a Qwen2 tokenizer with Qwen's control tokens."""
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
    )
    tokenizer.add_special_tokens({"additional_special_tokens": [END_OF_TEXT, *QWEN_CONTROL_TOKENS]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = QWEN_VL_CHAT_TEMPLATE
    return tokenizer


def _vocab_and_merges(bpe) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The trained vocabulary and merges in order, read from the tokenizer's JSON (the Python API hides merges)."""
    import json

    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in model["merges"]]
    return model["vocab"], merges


def make_tiny_model(out: str | Path, *, seed: int = 0, format_steps: int = 60) -> Path:
    """Write a tiny Qwen2.5-VL (model, tokenizer, processor, chat template) to `out` and return it.

    Weights are random, then taught the game's answer format for `format_steps` supervised steps (0 = purely
    random). The folder loads with `training.model.load_model_and_processor` like any Hub checkpoint.
    """
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.utils import logging as hf_logging

    from training.model import ImageOnlyQwenVLProcessor, make_image_processor

    hf_logging.disable_progress_bar()
    out = Path(out)
    tokenizer = train_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in (END_OF_TEXT, *QWEN_CONTROL_TOKENS)}
    text_hidden = 64
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": _round_up(len(tokenizer), 64),
            "hidden_size": text_hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids[END_OF_TEXT],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids[END_OF_TEXT],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "out_hidden_size": text_hidden,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    if format_steps:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a model this small gains nothing from threads, and loses much on a busy machine
        try:
            teach_format(model, tokenizer, steps=format_steps, seed=seed)
        finally:
            torch.set_num_threads(threads)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids[END_OF_TEXT]
    model.save_pretrained(out)
    processor = ImageOnlyQwenVLProcessor(
        image_processor=make_image_processor(), tokenizer=tokenizer, chat_template=QWEN_VL_CHAT_TEMPLATE
    )
    processor.save_pretrained(out)
    return out


def _round_up(value: int, multiple: int) -> int:
    """Pad the vocabulary like real checkpoints do, so the unused-id suppression is exercised."""
    return -(-value // multiple) * multiple


FORMAT_SUBJECTS = ("the red bar", "a blue cube", "the title", "the legend", "a green slice", "the line", "a sphere")


def format_examples(rng: np.random.Generator, count: int) -> list[str]:
    """Replies in the game's answer formats: a reasoning sentence, then `\\boxed{seat}`, `\\boxed{N/A}` or a clue."""
    replies = []
    for _ in range(count):
        subject = FORMAT_SUBJECTS[rng.integers(len(FORMAT_SUBJECTS))]
        kind = rng.integers(3)
        if kind == 0:
            seat = int(rng.integers(1, 6))
            replies.append(f"Player {seat} said {subject}. \\boxed{{{seat}}}")
        elif kind == 1:
            replies.append(f"I am not sure about {subject}. \\boxed{{N/A}}")
        else:
            replies.append(f"My image shows {subject}. \\boxed{{There is {subject}.}}")
    return replies


def teach_format(model, tokenizer, *, steps: int, seed: int) -> None:
    """A few supervised steps on game-format replies, so that a random model's samples parse sometimes.

    Without this, a random model never closes a `\\boxed{}`: every vote is invalid, every reward equal and every
    advantage zero, and a smoke run exercises no learning at all.
    """
    rng = np.random.default_rng(seed)
    lines = TOKENIZER_CORPUS.splitlines()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
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
