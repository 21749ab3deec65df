"""The policy loss of both stages: per-token PPO-clip on the advantages plus a k3 KL to a frozen reference.

All log-probs are of the sampled token ids (never re-tokenised text), and the completion mask includes the
EOS token, so the model is trained to stop. Aggregation (`LossConfig.aggregation`): `sequence` (default,
GRPO) averages each completion over its own tokens and then over completions, so every completion weighs
the same whatever its length; `token` averages over all completion tokens of the batch (DAPO-style).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from training.config import LossConfig


@dataclass(frozen=True)
class LossStats:
    """Detached statistics of one loss computation, averaged over completion tokens."""

    loss: float
    """The total loss that was returned."""
    policy_loss: float
    """The clipped policy-gradient term alone, aggregated like the loss."""
    kl: float
    """Mean k3 KL to the reference per token (0 when no reference was given)."""
    clip_fraction: float
    """Fraction of tokens whose clipped surrogate was the active (smaller) one."""
    approx_kl: float
    """Mean k3 estimate of KL(old || new) per token: how far this update moved from the sampling policy."""
    ratio_mean: float
    """Mean importance ratio new / old."""
    tokens: int
    """Completion tokens in the batch."""


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig,
) -> tuple[torch.Tensor, LossStats]:
    """The loss to minimise and its statistics.

    Args:
        logprobs: `[B, L]` log-probs of the sampled ids under the policy being trained (with grad).
        old_logprobs: `[B, L]` the same under the policy that sampled them (no grad).
        ref_logprobs: `[B, L]` the same under the frozen reference; None only when `config.kl_coef == 0`.
        advantages: `[B]` one advantage per completion.
        mask: `[B, L]` 1 on completion tokens (EOS included), 0 on padding; every row needs a token.
        config: clip range, KL weight and aggregation.
    """
    _check_inputs(logprobs, old_logprobs, ref_logprobs, advantages, mask, config)
    mask = mask.to(logprobs.dtype)  # [B, L]
    old_logprobs = old_logprobs.detach()
    logratio = logprobs - old_logprobs  # [B, L]
    ratio = torch.exp(logratio)  # [B, L]
    adv = advantages.detach().to(logprobs.dtype).unsqueeze(1)  # [B, 1]
    unclipped = ratio * adv  # [B, L]
    clipped = torch.clamp(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps) * adv  # [B, L]
    per_token_pg = -torch.minimum(unclipped, clipped)  # [B, L]
    if ref_logprobs is None:
        per_token_kl = torch.zeros_like(logprobs)
    else:
        ref_gap = ref_logprobs.detach() - logprobs  # [B, L]
        per_token_kl = torch.exp(ref_gap) - ref_gap - 1.0  # [B, L]
    pg_term = _aggregate(per_token_pg, mask, config.aggregation)
    loss = pg_term + config.kl_coef * _aggregate(per_token_kl, mask, config.aggregation)
    with torch.no_grad():
        tokens = mask.sum()
        active_clip = ((ratio < 1.0 - config.clip_eps) & (adv < 0)) | ((ratio > 1.0 + config.clip_eps) & (adv > 0))
        stats = LossStats(
            loss=loss.item(),
            policy_loss=pg_term.item(),
            kl=float((per_token_kl * mask).sum() / tokens),
            clip_fraction=float((active_clip.to(mask.dtype) * mask).sum() / tokens),
            approx_kl=float((((ratio - 1.0) - logratio) * mask).sum() / tokens),
            ratio_mean=float((ratio * mask).sum() / tokens),
            tokens=int(tokens),
        )
    return loss, stats


def _aggregate(per_token: torch.Tensor, mask: torch.Tensor, aggregation: str) -> torch.Tensor:
    if aggregation == "token":
        return (per_token * mask).sum() / mask.sum()
    per_sequence = (per_token * mask).sum(dim=1) / mask.sum(dim=1)  # [B]
    return per_sequence.mean()


def _check_inputs(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: LossConfig,
) -> None:
    if logprobs.dim() != 2:
        raise ValueError(f"logprobs must be [B, L], got shape {tuple(logprobs.shape)}")
    named = {"old_logprobs": old_logprobs, "mask": mask}
    if ref_logprobs is not None:
        named["ref_logprobs"] = ref_logprobs
    for name, tensor in named.items():
        if tensor.shape != logprobs.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, logprobs {tuple(logprobs.shape)}")
    if advantages.shape != logprobs.shape[:1]:
        raise ValueError(f"advantages must be [B] = [{logprobs.shape[0]}], got shape {tuple(advantages.shape)}")
    if ref_logprobs is None and config.kl_coef != 0:
        raise ValueError(f"kl_coef is {config.kl_coef} but no reference log-probs were given")
    if bool((mask.sum(dim=1) == 0).any()):
        raise ValueError("a completion has no tokens in its mask; the mask must include at least its EOS")
