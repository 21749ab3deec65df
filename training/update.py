"""One policy update's gradients: the loss of a step's trainable completions, accumulated over micro-batches.

Each micro-batch's loss is weighted by its share of the step (completions for `sequence` aggregation, tokens for
`token`), so that the accumulated gradient equals the gradient of the loss over the whole step at once: how the
step is split into micro-batches changes memory, not the update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from training.config import LossConfig
from training.loss import policy_loss
from training.rollout import Completions

STAT_NAMES = ("loss", "policy_loss", "kl", "clip_fraction", "approx_kl")


@dataclass(frozen=True)
class LossTotals:
    """The step's loss statistics, each averaged over micro-batches with the weights of the loss."""

    loss: float
    policy_loss: float
    kl: float
    clip_fraction: float
    approx_kl: float
    trained_completions: int
    """Completions that got gradient."""
    trained_tokens: int
    """Completion tokens that got gradient."""
    excluded_truncated: int
    """Completions left out because they were cut off (`LossConfig.exclude_truncated`)."""


LogprobsOf = Callable[[Completions], torch.Tensor]
"""A model's `[b, L]` log-probs of a micro-batch's completion tokens under the sampling distribution."""


def accumulate_gradients(
    policy_logprobs: LogprobsOf,
    reference_logprobs: LogprobsOf | None,
    chunks: Sequence[tuple[Completions, torch.Tensor]],
    *,
    loss_config: LossConfig,
    micro_batch_size: int,
    backward: Callable[[torch.Tensor, bool], None],
) -> LossTotals:
    """Backpropagate the step's loss into the policy's gradients, `micro_batch_size` completions at a time.

    Args:
        policy_logprobs: the trained model's log-probs, with gradient (the caller zeroes gradients and steps).
        reference_logprobs: the frozen starting model's log-probs for the KL term (called under `no_grad`); None
            when `loss_config.kl_coef == 0`.
        chunks: `(completions [B_i], advantages [B_i])` per sampling call, as `Trajectory.chunks`.
        loss_config: clip range, KL weight, aggregation, and whether cut-off completions are left out.
        micro_batch_size: completions per forward and backward pass.
        backward: `(loss, last)` backpropagates a micro-batch's loss; `last` is True for the step's final one,
            where data-parallel processes synchronise their gradients.
    """
    trainable = [_trainable_rows(completions, loss_config) for completions, _ in chunks]
    total = sum(_size(completions, rows, loss_config) for (completions, _), rows in zip(chunks, trainable))
    spans = [
        (index, range(first, min(first + micro_batch_size, len(completions))))
        for index, (completions, _) in enumerate(chunks)
        for first in range(0, len(completions), micro_batch_size)
    ]
    sums = dict.fromkeys(STAT_NAMES, 0.0)
    for number, (index, span) in enumerate(spans):
        completions, advantages = chunks[index]
        last = number == len(spans) - 1
        kept = [row for row in span if row in trainable[index]]
        if not kept:
            # Every completion here is left out; a zero loss keeps the number of backward calls (and so the
            # collectives of data-parallel and sharded processes) the same whatever was cut off.
            backward(policy_logprobs(completions.select(span)).sum() * 0.0, last)
            continue
        batch = completions.select(kept)
        logprobs = policy_logprobs(batch)  # [b, L]
        ref_logprobs = None
        if reference_logprobs is not None:
            with torch.no_grad():
                ref_logprobs = reference_logprobs(batch)
        loss, stats = policy_loss(
            logprobs,
            batch.old_logprobs.to(logprobs.device),
            ref_logprobs,
            advantages[kept].to(logprobs.device),
            batch.completion_mask.to(logprobs.device),
            loss_config,
        )
        weight = _size(batch, range(len(batch)), loss_config) / total
        backward(loss * weight, last)
        for name in STAT_NAMES:
            sums[name] += weight * getattr(stats, name)
    return LossTotals(
        **sums,
        trained_completions=sum(len(rows) for rows in trainable),
        trained_tokens=sum(_tokens(completions, rows) for (completions, _), rows in zip(chunks, trainable)),
        excluded_truncated=sum(len(completions) - len(rows) for (completions, _), rows in zip(chunks, trainable)),
    )


def _trainable_rows(completions: Completions, config: LossConfig) -> set[int]:
    if not config.exclude_truncated:
        return set(range(len(completions)))
    return {row for row, cut in enumerate(completions.truncated.tolist()) if not cut}


def _tokens(completions: Completions, rows: Sequence[int] | set[int]) -> int:
    return int(completions.completion_lengths[sorted(rows)].sum())


def _size(completions: Completions, rows: Sequence[int] | set[int], config: LossConfig) -> int:
    """How much `rows` weigh in the loss: completions (`sequence`) or completion tokens (`token`)."""
    return _tokens(completions, rows) if config.aggregation == "token" else len(rows)
