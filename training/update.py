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
from training.rollout import Completions, SamplingConfig, token_logprobs

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


def accumulate_gradients(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    chunks: Sequence[tuple[Completions, torch.Tensor]],
    *,
    sampling: SamplingConfig,
    loss_config: LossConfig,
    micro_batch_size: int,
    backward: Callable[[torch.Tensor], None],
) -> LossTotals:
    """Backpropagate the step's loss into `policy`'s gradients, `micro_batch_size` completions at a time.

    Args:
        policy: the model being trained (gradients accumulate into it; the caller zeroes them and steps).
        reference: the frozen starting model for the KL term; None when `loss_config.kl_coef == 0`.
        chunks: `(completions [B_i], advantages [B_i])` per sampling call, as `Trajectory.chunks`.
        sampling: the distribution the completions were sampled from (log-probs are recomputed under it).
        loss_config: clip range, KL weight, aggregation, and whether cut-off completions are left out.
        micro_batch_size: completions per forward and backward pass.
        backward: how to backpropagate a loss (`accelerator.backward` in the trainer).
    """
    trainable = [_trainable_rows(completions, loss_config) for completions, _ in chunks]
    total = sum(_size(completions, rows, loss_config) for (completions, _), rows in zip(chunks, trainable))
    sums = dict.fromkeys(STAT_NAMES, 0.0)
    for (completions, advantages), rows in zip(chunks, trainable):
        for first in range(0, len(completions), micro_batch_size):
            span = range(first, min(first + micro_batch_size, len(completions)))
            kept = [row for row in span if row in rows]
            if not kept:
                # Every completion here is left out; a zero loss keeps the number of backward calls (and so the
                # gradient all-reduces of data-parallel processes) the same whatever was cut off.
                backward(token_logprobs(policy, completions.select(span), sampling).sum() * 0.0)
                continue
            batch = completions.select(kept)
            logprobs = token_logprobs(policy, batch, sampling)  # [b, L]
            ref_logprobs = None
            if reference is not None:
                with torch.no_grad():
                    ref_logprobs = token_logprobs(reference, batch, sampling)
            loss, stats = policy_loss(
                logprobs,
                batch.old_logprobs.to(logprobs.device),
                ref_logprobs,
                advantages[kept].to(logprobs.device),
                batch.completion_mask.to(logprobs.device),
                loss_config,
            )
            weight = _size(batch, range(len(batch)), loss_config) / total
            backward(loss * weight)
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
