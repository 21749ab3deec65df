"""Batched sampling of completions for chat prompts with images, and their token log-probs under any model.

One `generate` call serves a whole batch of prompts (every game's speaker at one turn, or every voter's G
samples), left-padded. The sampled token ids are kept as they are (never re-tokenised), with their log-probs
under the sampling distribution recorded during generation; the training forward computes log-probs of the same
ids under the same distribution, so both agree.

There is exactly one sampling distribution, `SamplingConfig.logits`: the model's logits divided by the
temperature, with the suppressed ids removed. `generate` runs with every one of its own logits processors
switched off, whatever the model's `generation_config.json` asks for (Qwen2.5-VL-7B-Instruct's asks for a
repetition penalty, top-k and top-p); a single processor of ours applies `SamplingConfig.logits`, records the
log-prob of each sampled token and hands `generate` the logits it samples from. The training forward applies the
same function, so a fresh update starts exactly on-policy (PPO ratio 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from PIL import Image
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from datagen.errors import ConfigError
from training.families import Prefill, family_of
from training.model import blank_generation_config

Messages = list[dict[str, Any]]
"""One chat prompt in Qwen's format: `[{"role": ..., "content": [{"type": "image", "image": PIL}, ...]}]`."""


@dataclass(frozen=True)
class SamplingConfig:
    """The run's one sampling distribution and length limit, used by `generate` and by every log-prob recomputation.

    Only the temperature and the suppressed ids shape the distribution. Truncating samplers (top-k, top-p, min-p,
    typical-p) are switched off because a token sampled inside the old policy's truncated support can fall outside
    the updated policy's, which makes its log-ratio and KL infinite; history-dependent penalties (repetition
    penalty, n-gram bans, minimum length) are switched off because the training forward would have to recompute
    them per position. Neither is used by the paper (temperature 0.8 alone).
    """

    max_new_tokens: int = 1024
    """Longest completion, in tokens (paper: 1024); the minimum is always 0."""
    temperature: float = 0.8
    """Sampling temperature (paper: 0.8); log-probs are taken under the tempered distribution."""
    suppressed: tuple[int, ...] = ()
    """Token ids the policy may never sample (vision control tokens, padded vocabulary): probability 0."""

    def logits(self, raw: torch.Tensor) -> torch.Tensor:
        """`[..., V]` float32 logits of the sampling distribution: `raw / temperature`, suppressed ids at -inf."""
        shaped = raw.float() / self.temperature
        if self.suppressed:
            shaped[..., list(self.suppressed)] = float("-inf")
        return shaped

    def logprobs(self, raw: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
        """`[...]` log-probs of `token_ids` (`[...]`) under the sampling distribution of `raw` logits (`[..., V]`)."""
        return torch.log_softmax(self.logits(raw), dim=-1).gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)


class Sampler(Protocol):
    """What self-play needs from a sampler: B chat prompts in, `B * num_samples` completions out."""

    def sample(self, prompts: Sequence[Messages], *, num_samples: int = 1) -> Completions:
        """Completions grouped by prompt: the samples of prompt i are rows `i * num_samples ... + num_samples - 1`."""
        ...


VisionInputs = dict[str, torch.Tensor]
"""One prompt's image inputs to the model as its processor returned them (Qwen-VL: `pixel_values` [N_patches, D]
and `image_grid_thw` [N_images, 3]; InternVL: `pixel_values` [N_tiles, 3, H, W]); concatenated along dim 0 per batch."""


@dataclass
class Completions:
    """B sampled completions with everything the loss needs; B = number of prompts given to `sample`.

    Tensors (P = longest prompt, L = longest completion; prompts are left-padded, completions right-padded):
        prompt_ids: [B, P] token ids of the chat-formatted prompts.
        prompt_mask: [B, P] 1 on prompt tokens, 0 on left padding.
        mm_token_type_ids: [B, P] 1 on image placeholder tokens, 0 elsewhere (M-RoPE needs it); None for a model
            family whose forward does not take them.
        completion_ids: [B, L] the sampled token ids, padding after the end-of-turn token.
        completion_mask: [B, L] 1 up to and including the end-of-turn token, 0 on padding.
        old_logprobs: [B, L] log-probs of `completion_ids` under the sampling policy (0 on padding).
        truncated: [B] True where the completion hit `max_new_tokens` without an end-of-turn token.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor | None
    vision: list[VisionInputs]
    """Per row, its prompt's image inputs (the samples of one prompt share one dict)."""
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    old_logprobs: torch.Tensor
    truncated: torch.Tensor
    texts: list[str]
    """The decoded completions, special tokens removed."""

    def __len__(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def completion_lengths(self) -> torch.Tensor:
        """[B] tokens per completion, end-of-turn token included."""
        return self.completion_mask.sum(dim=1)

    def select(self, rows: Sequence[int]) -> Completions:
        """The completions at `rows` with their images (a micro-batch), without columns that are all padding."""
        rows = list(rows)
        keep = torch.tensor(rows, dtype=torch.long)
        # Drop the columns that are padding in every selected row: left of the prompts, right of the completions.
        prompt_start = int((self.prompt_mask[keep].sum(dim=0) > 0).int().argmax())
        completion_end = int(self.completion_mask[keep].sum(dim=1).max())
        mm_token_type_ids = self.mm_token_type_ids
        return Completions(
            prompt_ids=self.prompt_ids[keep, prompt_start:],
            prompt_mask=self.prompt_mask[keep, prompt_start:],
            mm_token_type_ids=None if mm_token_type_ids is None else mm_token_type_ids[keep, prompt_start:],
            vision=[self.vision[row] for row in rows],
            completion_ids=self.completion_ids[keep, :completion_end],
            completion_mask=self.completion_mask[keep, :completion_end],
            old_logprobs=self.old_logprobs[keep, :completion_end],
            truncated=self.truncated[keep],
            texts=[self.texts[row] for row in rows],
        )


def concat_completions(parts: Sequence[Completions], pad_id: int) -> Completions:
    """The rows of `parts` in order as one batch: prompts left-padded and completions right-padded to the widest."""
    if len(parts) == 1:
        return parts[0]
    prompt_width = max(part.prompt_ids.shape[1] for part in parts)
    completion_width = max(part.completion_ids.shape[1] for part in parts)

    def left(tensor: torch.Tensor, value: int) -> torch.Tensor:
        return torch.nn.functional.pad(tensor, (prompt_width - tensor.shape[1], 0), value=value)

    def right(tensor: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(tensor, (0, completion_width - tensor.shape[1]), value=value)

    with_types = parts[0].mm_token_type_ids is not None
    return Completions(
        prompt_ids=torch.cat([left(part.prompt_ids, pad_id) for part in parts]),
        prompt_mask=torch.cat([left(part.prompt_mask, 0) for part in parts]),
        mm_token_type_ids=torch.cat([left(part.mm_token_type_ids, 0) for part in parts]) if with_types else None,
        vision=[inputs for part in parts for inputs in part.vision],
        completion_ids=torch.cat([right(part.completion_ids, pad_id) for part in parts]),
        completion_mask=torch.cat([right(part.completion_mask, 0) for part in parts]),
        old_logprobs=torch.cat([right(part.old_logprobs, 0.0) for part in parts]),
        truncated=torch.cat([part.truncated for part in parts]),
        texts=[text for part in parts for text in part.texts],
    )


def batch_vision(vision: Sequence[VisionInputs]) -> VisionInputs:
    """The image inputs of several prompts as one batch: each key's tensors concatenated along dim 0, in order."""
    keys = dict.fromkeys(key for inputs in vision for key in inputs)
    return {key: torch.cat([inputs[key] for inputs in vision if key in inputs]) for key in keys}


def message_images(messages: Messages) -> list[Image.Image]:
    """The PIL images of a chat prompt, in the order the chat template places their placeholders."""
    images = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            continue
        images.extend(item["image"] for item in content if item.get("type") == "image")
    return images


class SamplingProcessor(LogitsProcessor):
    """The only logits processor of our `generate` calls: applies `SamplingConfig.logits` and records log-probs.

    `generate` samples from the softmax of what this returns (its own processors are all off), so the recorded
    log-prob of each sampled token is exactly that of the sampling distribution. It keeps one step's log-softmax
    ([B, V]) and gathers the sampled id at the next call, so memory stays O(B·V + B·L) instead of O(B·L·V).
    """

    def __init__(self, sampling: SamplingConfig) -> None:
        self.sampling = sampling
        self.prompt_length: int | None = None
        self.pending: torch.Tensor | None = None  # [B, V] log-softmax of the previous step
        self.logprobs: list[torch.Tensor] = []  # L entries of [B]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        else:
            self.logprobs.append(self.pending.gather(1, input_ids[:, -1:]).squeeze(1))
        shaped = self.sampling.logits(scores)  # [B, V]
        self.pending = torch.log_softmax(shaped, dim=-1)
        return shaped

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """[B, L] log-probs of the completion tokens of `sequences` (the output of `generate`)."""
        if self.pending is not None and sequences.shape[1] > self.prompt_length + len(self.logprobs):
            self.logprobs.append(self.pending.gather(1, sequences[:, -1:]).squeeze(1))
        self.pending = None
        return torch.stack(self.logprobs, dim=1) if self.logprobs else sequences.new_zeros((len(sequences), 0)).float()


def completion_mask(completion_ids: torch.Tensor, eos_ids: Sequence[int]) -> torch.Tensor:
    """[B, L] 1 up to and including the first end-of-turn token, 0 after; all ones if none was sampled."""
    is_eos = torch.isin(completion_ids, torch.tensor(list(eos_ids), device=completion_ids.device))
    after_eos = (is_eos.int().cumsum(dim=1) - is_eos.int()) > 0
    return (~after_eos).long()


TOKEN_INPUTS = ("input_ids", "attention_mask", "mm_token_type_ids")
"""Processor outputs aligned with the prompt's tokens ([1, P] per prompt), left-padded to a common width."""


@dataclass(frozen=True)
class EncodedPrompts:
    """Prompts ready for the model: token-aligned tensors `[B, P]`, left-padded to one width; each prompt's images."""

    tokens: dict[str, torch.Tensor]
    """`input_ids`, `attention_mask` and, where the family takes them, `mm_token_type_ids`: each [B, P]."""
    vision: list[VisionInputs]
    """Per prompt, its image inputs."""

    def repeated(self, times: int) -> EncodedPrompts:
        """Every prompt `times` times in place (the rows of its samples)."""
        rows = [row for row in range(len(self.vision)) for _ in range(times)]
        return EncodedPrompts({key: value[rows] for key, value in self.tokens.items()}, [self.vision[r] for r in rows])

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """The keyword arguments of a forward or `generate` over all the prompts."""
        return {**self.tokens, **batch_vision(self.vision)}


class ModelSampler:
    """Samples completions from a `transformers` model for batches of chat prompts, one `generate` call per batch."""

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any,
        sampling: SamplingConfig,
        *,
        max_rows_per_call: int = 0,
        prune_every: int = 0,
        compute_dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = model
        self.processor = processor
        self.sampling = sampling
        self.max_rows_per_call = max_rows_per_call
        self.prune_every = prune_every
        """Every this many new tokens, rows that have ended leave the batch (0: they stay until the last ends)."""
        self.compute_dtype = compute_dtype
        """The dtype activations (and so the KV cache) have while sampling: bf16 under mixed precision."""
        self.family = family_of(model.config)
        self.with_mm_token_type_ids = self.family.takes_mm_token_type_ids(model)
        eos = model.generation_config.eos_token_id
        self.eos_ids = [eos] if isinstance(eos, int) else list(eos)
        self.pad_id = processor.tokenizer.pad_token_id

    def encode(self, prompts: Sequence[Messages]) -> EncodedPrompts:
        """Chat-format and tokenise prompts with their images, left-padded.

        Each prompt goes through the processor alone, so that every family's image inputs stay attributable to their
        prompt (InternVL's tile counts, for one, are not returned by its processor).

        Raises:
            ConfigError: the processor returns a token-aligned input this module does not carry to the model.
        """
        encoded = []
        for prompt in prompts:
            text = self.processor.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            images = message_images(prompt) or None
            extra = {"return_mm_token_type_ids": True} if self.with_mm_token_type_ids else {}
            encoded.append(dict(self.processor(text=[text], images=images, return_tensors="pt", **extra)))
        width = max(inputs["input_ids"].shape[1] for inputs in encoded)
        tokens = {
            key: torch.cat(
                [_left_pad(inputs[key], width, self.pad_id if key == "input_ids" else 0) for inputs in encoded]
            )
            for key in TOKEN_INPUTS
            if key in encoded[0]
        }
        vision = [{key: value for key, value in inputs.items() if key not in TOKEN_INPUTS} for inputs in encoded]
        for inputs, full in zip(vision, encoded):
            aligned = [key for key, value in inputs.items() if value.shape == full["input_ids"].shape]
            if aligned:
                raise ConfigError(
                    f"the {self.family.name} processor returns token-aligned input(s) {aligned} that sampling and "
                    "training do not carry; give the model type an entry in training/families.py"
                )
        return EncodedPrompts(tokens, vision)

    @torch.no_grad()
    def sample(self, prompts: Sequence[Messages], *, num_samples: int = 1) -> Completions:
        """`num_samples` completions per prompt, in as few `generate` calls as the row cap allows (usually one).

        Rows are grouped by prompt: the samples of prompt i are rows `i * num_samples ... + num_samples - 1`.
        With several samples per prompt, and a family that allows it, each prompt (images included) is encoded once
        and its KV cache is shared by its samples, so the prompt costs one prefill instead of `num_samples`. A
        batch of more rows than `rows_per_call` is split into consecutive calls of whole prompts.
        """
        prompts_per_call = max(1, self.rows_per_call(prompts, num_samples) // num_samples)
        parts = [
            self._sample_batch(prompts[first : first + prompts_per_call], num_samples)
            for first in range(0, len(prompts), prompts_per_call)
        ]
        return concat_completions(parts, self.pad_id)

    def rows_per_call(self, prompts: Sequence[Messages], num_samples: int) -> int:
        """The most rows one `generate` call takes: `max_rows_per_call`, or on a GPU what its free memory holds.

        Auto (0) on a GPU: 80% of the free memory divided by one row's KV cache at full length (prompt and
        `max_new_tokens`, keys and values of every layer) plus its float32 logits and sampling buffers; no cap on
        a CPU, where memory is not the constraint.
        """
        if self.max_rows_per_call:
            return self.max_rows_per_call
        device = next(self.model.parameters()).device
        if device.type != "cuda":
            return len(prompts) * num_samples
        free, _ = torch.cuda.mem_get_info(device)
        text = self.model.config.get_text_config()
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
        longest_prompt = max(self.encode(prompts[:8]).tokens["attention_mask"].sum(dim=1).tolist())
        length = longest_prompt + self.sampling.max_new_tokens
        element = torch.empty((), dtype=self.compute_dtype).element_size()
        kv_bytes = 2 * text.num_hidden_layers * kv_heads * head_dim * length * element
        buffers = 4 * 4 * text.vocab_size  # logits, shaped logits, log-softmax, probabilities: float32 [V] each
        return max(num_samples, int(0.8 * free // (kv_bytes + buffers)))

    def _sample_batch(self, prompts: Sequence[Messages], num_samples: int) -> Completions:
        encoded = self.encode(prompts)
        repeated = encoded.repeated(num_samples)
        if num_samples > 1 and self.family.prefill is not Prefill.NONE:
            completion_ids, logprobs = self._generate_sharing_prefill(encoded, num_samples)
        else:
            completion_ids, logprobs = self._generate(**repeated.model_inputs())
        return self._completions(repeated, completion_ids, logprobs)

    def _generate(self, **inputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """`[B, L]` sampled ids (padding after a row's end) and their log-probs, `max_new_tokens` at most.

        Generation runs in segments of `prune_every` tokens; after each, the rows that have ended leave the batch
        and the KV cache, so that they stop costing compute while the others go on (transformers' `generate`
        alone decodes padding for them until the longest row ends).
        """
        device = next(self.model.parameters()).device
        inputs = {key: value.to(device) if torch.is_tensor(value) else value for key, value in inputs.items()}
        rows = inputs["input_ids"].shape[0]
        tokens: list[list[torch.Tensor]] = [[] for _ in range(rows)]
        logprobs: list[list[torch.Tensor]] = [[] for _ in range(rows)]
        alive = torch.arange(rows)
        remaining = self.sampling.max_new_tokens
        eos = torch.tensor(self.eos_ids, device=device)
        while True:
            processor = SamplingProcessor(self.sampling)
            with blank_generation_config(self.model):
                output = self.model.generate(
                    **inputs,
                    generation_config=self._generation_config(min(self.prune_every or remaining, remaining)),
                    logits_processor=LogitsProcessorList([processor]),
                    # transformers would keep FSDP processes in lockstep (an all-reduce per token); a rollout
                    # phase has every block gathered already, so each process generates on its own.
                    synced_gpus=False,
                )
            new = output.sequences[:, inputs["input_ids"].shape[1] :]  # [b, l]
            new_logprobs = processor.finish(output.sequences)  # [b, l]
            for index, row in enumerate(alive.tolist()):
                tokens[row].append(new[index].cpu())
                logprobs[row].append(new_logprobs[index].cpu())
            remaining -= new.shape[1]
            going = ~torch.isin(new, eos).any(dim=1)  # [b]
            if remaining <= 0 or not bool(going.any()):
                break
            keep = going.nonzero().squeeze(1)
            output.past_key_values.batch_select_indices(keep)
            if self.family.prefill is Prefill.ROPE_DELTAS:
                self.model.model.rope_deltas = self.model.model.rope_deltas[keep]
            inputs = {
                "input_ids": output.sequences[keep],
                "attention_mask": torch.cat([inputs["attention_mask"], torch.ones_like(new)], dim=1)[keep],
                "past_key_values": output.past_key_values,
            }
            alive = alive[keep.cpu()]
        return _padded([torch.cat(parts) for parts in tokens], self.pad_id), _padded(
            [torch.cat(parts) for parts in logprobs], 0.0
        )

    def _generation_config(self, max_new_tokens: int) -> GenerationConfig:
        """Plain sampling of up to `max_new_tokens`: every processor of `generate` off (ours shapes the logits)."""
        return GenerationConfig(
            do_sample=True,
            num_beams=1,
            temperature=1.0,  # the temperature is in `SamplingConfig.logits`, applied by `SamplingProcessor`
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            return_dict_in_generate=True,
        )

    def _generate_sharing_prefill(self, encoded: EncodedPrompts, num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefill every prompt but its last token once, repeat the cache per sample, then sample from there.

        Qwen-VL models keep their M-RoPE offsets in `model.model.rope_deltas`, which the samples must repeat too.
        """
        from transformers import DynamicCache

        device = next(self.model.parameters()).device
        tokens = {key: value.to(device) for key, value in encoded.tokens.items()}
        vision = {key: value.to(device) for key, value in batch_vision(encoded.vision).items()}
        cache = DynamicCache(config=self.model.config)
        self.model(
            **{key: value[:, :-1] for key, value in tokens.items()},
            **vision,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        cache.batch_repeat_interleave(num_samples)
        if self.family.prefill is Prefill.ROPE_DELTAS:
            self.model.model.rope_deltas = self.model.model.rope_deltas.repeat_interleave(num_samples, dim=0)
        return self._generate(
            input_ids=tokens["input_ids"].repeat_interleave(num_samples, dim=0),
            attention_mask=tokens["attention_mask"].repeat_interleave(num_samples, dim=0),
            past_key_values=cache,
        )

    def _completions(
        self, encoded: EncodedPrompts, completion_ids: torch.Tensor, logprobs: torch.Tensor
    ) -> Completions:
        mask = completion_mask(completion_ids, self.eos_ids)
        ended = torch.isin(completion_ids, torch.tensor(self.eos_ids)).any(dim=1)  # [B]
        completion_ids = torch.where(mask.bool(), completion_ids, torch.full_like(completion_ids, self.pad_id))
        lengths = mask.sum(dim=1).tolist()
        texts = self.processor.tokenizer.batch_decode(
            [ids[:length] for ids, length in zip(completion_ids.tolist(), lengths)], skip_special_tokens=True
        )
        return Completions(
            prompt_ids=encoded.tokens["input_ids"],
            prompt_mask=encoded.tokens["attention_mask"],
            mm_token_type_ids=encoded.tokens.get("mm_token_type_ids"),
            vision=encoded.vision,
            completion_ids=completion_ids,
            completion_mask=mask,
            old_logprobs=logprobs * mask,
            truncated=~ended,
            texts=texts,
        )


def _padded(rows: Sequence[torch.Tensor], value: float) -> torch.Tensor:
    """`[B, L]` from B 1-d tensors of different lengths, right-padded with `value`."""
    return torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True, padding_value=value)


def _left_pad(tensor: torch.Tensor, width: int, value: int) -> torch.Tensor:
    """`[1, P]` -> `[1, width]` with `value` on the left."""
    return torch.nn.functional.pad(tensor, (width - tensor.shape[1], 0), value=value)


def token_logprobs(model: torch.nn.Module, batch: Completions, sampling: SamplingConfig) -> torch.Tensor:
    """[B, L] log-probs of `batch.completion_ids` under `model` and the sampling distribution (`sampling.logits`).

    Gradient flows when called outside `torch.no_grad()`. The prompt's `mm_token_type_ids` (where the family has
    them) are extended with zeros over the completion: without them Qwen2.5-VL silently uses wrong M-RoPE positions.
    """
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    completion_length = batch.completion_ids.shape[1]
    input_ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1).to(device)  # [B, P + L]
    attention_mask = torch.cat([batch.prompt_mask, batch.completion_mask], dim=1).to(device)
    extra = {}
    if batch.mm_token_type_ids is not None:
        zeros = torch.zeros_like(batch.completion_ids, dtype=batch.mm_token_type_ids.dtype)
        extra["mm_token_type_ids"] = torch.cat([batch.mm_token_type_ids, zeros], dim=1).to(device)
    vision = {
        key: value.to(device, dtype=dtype) if value.is_floating_point() else value.to(device)
        for key, value in batch_vision(batch.vision).items()
    }
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        **extra,
        **vision,
        logits_to_keep=completion_length + 1,
        use_cache=False,
    ).logits[:, :-1]  # [B, L, V]: the logits at position t predict completion token t
    logprobs = sampling.logprobs(logits, batch.completion_ids.to(device))  # [B, L]
    return logprobs * batch.completion_mask.to(device)
