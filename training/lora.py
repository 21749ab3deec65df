"""Low-rank adapters (peft) on the language model, and the merged weights a checkpoint's model folder gets.

Adapters train with dropout 0: dropout would make the training forward differ from the forward that sampled
(the PPO ratio of a fresh update would not be 1). A checkpoint holds the full model with the adapters merged,
`W + (alpha / r) B A`, computed out of place, so evaluators load it like any other model and the weights being
trained are never touched by a merge and unmerge.
"""

from __future__ import annotations

import torch

from training.recipe import LoraConfig

PEFT_PREFIX = "base_model.model."
ADAPTER = "default"


def apply_lora(model: torch.nn.Module, config: LoraConfig) -> torch.nn.Module:
    """`model` with adapters on the language model's `config.target_modules` (the vision tower keeps none)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    targets = rf".*language_model.*\.({'|'.join(config.target_modules)})$"
    peft_config = PeftLoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0, target_modules=targets)
    return get_peft_model(model, peft_config)


def merged_state_dict(state: dict[str, torch.Tensor], config: LoraConfig) -> dict[str, torch.Tensor]:
    """The plain model's state dict from a peft model's full state dict: adapters merged, peft's names removed."""
    scale = config.alpha / config.rank
    merged = {}
    for key, value in state.items():
        if ".lora_" in key:
            continue
        name = key.removeprefix(PEFT_PREFIX).replace(".base_layer.", ".")
        if key.endswith(".base_layer.weight"):
            module = key[: -len(".base_layer.weight")]
            down = state[f"{module}.lora_A.{ADAPTER}.weight"]  # [r, in]
            up = state[f"{module}.lora_B.{ADAPTER}.weight"]  # [out, r]
            value = (value.float() + scale * (up.float() @ down.float())).to(value.dtype)
        merged[name] = value
    return merged
