"""Optional rollouts with vLLM (`rollout.backend: vllm`, extra `vllm`). NOT RUN HERE: vLLM cannot be installed or
run where this project is built and tested (no GPU); this module is written against vLLM's documented API
(`vllm.LLM`, `SamplingParams`, multi-modal prompts, sleep mode, `logprobs_mode`) and only its pure parts are tested.

Design: one engine per training process, colocated on that process's GPU (tensor parallel 1), sharing the GPU with
the policy (`gpu_memory_utilization` is the engine's share). It samples from exactly the trainer's distribution:
temperature only, every other sampler and penalty off, the suppressed ids excluded through `allowed_token_ids`,
and `logprobs_mode="processed_logprobs"` so that each sampled token's log-prob is taken after the temperature and
the mask (vLLM's default returns log-probs of the raw logits). Completions carry vLLM's sampled token ids and
those log-probs, with the prompt tensors our processor makes for the training forward. After every optimizer
step the trainer pushes the new weights, one tensor at a time (bf16, gathered from the shards), and the engine
sleeps (frees its KV cache) during the update.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from training.rollout import (
    Completions,
    EncodedPrompts,
    Messages,
    ModelSampler,
    SamplingConfig,
    completion_mask,
    message_images,
)


def sampling_params_kwargs(
    sampling: SamplingConfig, *, num_samples: int, vocab_size: int, eos_ids: Sequence[int], seed: int
) -> dict[str, Any]:
    """The `vllm.SamplingParams` arguments that reproduce `sampling`: temperature only, nothing else shaping."""
    suppressed = set(sampling.suppressed)
    return {
        "n": num_samples,
        "temperature": sampling.temperature,
        "top_p": 1.0,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "max_tokens": sampling.max_new_tokens,
        "min_tokens": 0,
        "stop_token_ids": list(eos_ids),
        "allowed_token_ids": [token for token in range(vocab_size) if token not in suppressed],
        "logprobs": 0,  # the sampled token's own log-prob only
        "skip_special_tokens": True,
        "seed": seed,
    }


def completions_from_outputs(
    encoded: EncodedPrompts,
    outputs: Sequence[Any],
    *,
    num_samples: int,
    eos_ids: Sequence[int],
    pad_id: int,
) -> Completions:
    """`Completions` from vLLM's `RequestOutput`s (one per prompt, `num_samples` `CompletionOutput`s each).

    `encoded` is our processor's encoding of the same prompts (the training forward's prompt tensors); each
    sample's `token_ids` and the per-token `logprobs` (a dict from token id to an object with `.logprob`) become
    the completion ids and old log-probs, rows grouped by prompt like `ModelSampler.sample`.
    """
    if len(outputs) != len(encoded.vision):
        raise ValueError(f"{len(outputs)} vLLM outputs for {len(encoded.vision)} prompts")
    samples = [sample for output in outputs for sample in output.outputs]
    if len(samples) != len(outputs) * num_samples:
        raise ValueError(f"expected {num_samples} samples per prompt, got {len(samples)} for {len(outputs)} prompts")
    lengths = torch.tensor([len(sample.token_ids) for sample in samples])  # [B]
    width = max(1, int(lengths.max()))
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)  # [B, L]
    logprobs = torch.zeros(len(samples), width)  # [B, L]
    for row, sample in enumerate(samples):
        tokens = list(sample.token_ids)
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        logprobs[row, : len(tokens)] = torch.tensor(
            [step[token].logprob for step, token in zip(sample.logprobs, tokens)]
        )
    sampled = torch.arange(width)[None, :] < lengths[:, None]  # [B, L]: vLLM returns no padding
    mask = completion_mask(ids, eos_ids) * sampled
    repeated = encoded.repeated(num_samples)
    ended = torch.isin(ids, torch.tensor(list(eos_ids))).any(dim=1)
    return Completions(
        prompt_ids=repeated.tokens["input_ids"],
        prompt_mask=repeated.tokens["attention_mask"],
        mm_token_type_ids=repeated.tokens.get("mm_token_type_ids"),
        vision=repeated.vision,
        completion_ids=torch.where(mask.bool(), ids, torch.full_like(ids, pad_id)),
        completion_mask=mask.long(),
        old_logprobs=logprobs * mask,
        truncated=~ended,
        texts=[sample.text for sample in samples],
    )


class VllmSampler:
    """The `Sampler` interface over a colocated vLLM engine (not run here; see the module docstring)."""

    def __init__(
        self,
        model: str,
        encoder: ModelSampler,
        sampling: SamplingConfig,
        *,
        vocab_size: int,
        seed: int,
        gpu_memory_utilization: float,
        max_model_len: int,
    ) -> None:
        from vllm import LLM

        self.encoder = encoder  # our processor and chat template: the prompt tensors of the training forward
        self.sampling = sampling
        self.vocab_size = vocab_size
        self.seed = seed
        self.calls = 0
        self.llm = LLM(
            model=model,
            dtype="bfloat16",
            seed=seed,
            tensor_parallel_size=1,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_sleep_mode=True,
            logprobs_mode="processed_logprobs",
            limit_mm_per_prompt={"image": 1},
        )

    def sample(self, prompts: Sequence[Messages], *, num_samples: int = 1) -> Completions:
        from vllm import SamplingParams

        processor = self.encoder.processor
        texts = [processor.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
        requests = [
            {"prompt": text, "multi_modal_data": {"image": message_images(prompt)}}
            for text, prompt in zip(texts, prompts)
        ]
        self.calls += 1
        params = SamplingParams(
            **sampling_params_kwargs(
                self.sampling,
                num_samples=num_samples,
                vocab_size=self.vocab_size,
                eos_ids=self.encoder.eos_ids,
                seed=self.seed + self.calls,
            )
        )
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return completions_from_outputs(
            self.encoder.encode(prompts),
            outputs,
            num_samples=num_samples,
            eos_ids=self.encoder.eos_ids,
            pad_id=self.encoder.pad_id,
        )

    def push_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load the policy's new weights into the engine, one tensor at a time (names as the model's state dict)."""
        model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
        for name, tensor in named_tensors:
            model.load_weights([(name, tensor)])
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        """Free the engine's KV cache (and offload its weights) while the policy trains."""
        self.llm.sleep(level=1)

    def wake(self) -> None:
        self.llm.wake_up()
