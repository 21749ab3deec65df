"""What training must know per model family: tokens never to sample, prefill sharing, forward extras, image size.

One entry per `config.model_type` of the families the paper trained or that share their code paths (Qwen2-VL,
Qwen2.5-VL, Qwen3-VL, and InternVL3 as transformers' native `internvl`). Any other `AutoModelForImageTextToText`
with a chat template takes `GENERIC`: it suppresses the processor's own image and video tokens, samples every
completion from a full prefill, passes `mm_token_type_ids` only where the model's forward takes them, and keeps
the image processor's own resolution.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Prefill(StrEnum):
    """How the G samples of one prompt share its prefill (one forward of the prompt, its cache repeated G times)."""

    ROPE_DELTAS = "rope_deltas"
    """Share it and repeat the model's cached M-RoPE offsets (`model.model.rope_deltas`) per sample (Qwen-VL)."""
    PLAIN = "plain"
    """Share it; positions are plain 1-D, so the repeated cache is all that generation needs."""
    NONE = "none"
    """Do not share: every sample prefills its own copy of the prompt."""


def _qwen_pixels(image_processor: Any, max_pixels: int) -> None:
    """Qwen-VL resizes each image to between `shortest_edge` and `longest_edge` pixels (28 x 28, or 32 x 32 for
    Qwen3-VL, per visual token)."""
    minimum = min(max_pixels, image_processor.size["shortest_edge"])
    image_processor.size = {"longest_edge": max_pixels, "shortest_edge": minimum}


def _internvl_pixels(image_processor: Any, max_pixels: int) -> None:
    """InternVL cuts each image into square tiles (plus a thumbnail): the bound becomes a number of tiles."""
    image_processor.max_patches = max(1, max_pixels // (image_processor.size["height"] * image_processor.size["width"]))


@dataclass(frozen=True)
class Family:
    """The family-specific pieces of sampling and training."""

    name: str
    suppressed_tokens: tuple[str, ...]
    """Control tokens a policy must never sample, beyond the processor's own image and video tokens."""
    prefill: Prefill
    mm_token_type_ids: bool | None
    """Whether the forward takes `mm_token_type_ids` (M-RoPE needs them); None: ask the model's signature."""
    pixel_limit: Callable[[Any, int], None] | None
    """`(image_processor, max_pixels)` bounds the pixels an image is shown at; None: no known way (kept as is)."""

    def takes_mm_token_type_ids(self, model: Any) -> bool:
        """Whether `model`'s forward gets `mm_token_type_ids` (from the table, or its signature when unknown)."""
        if self.mm_token_type_ids is not None:
            return self.mm_token_type_ids
        return "mm_token_type_ids" in inspect.signature(model.forward).parameters

    def limit_pixels(self, processor: Any, max_pixels: int | None) -> None:
        """Bound the pixels per image of `processor` (in memory only: a checkpoint keeps the model's own files)."""
        if max_pixels is not None and self.pixel_limit is not None:
            self.pixel_limit(processor.image_processor, max_pixels)


QWEN_SUPPRESSED = (
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
"""Qwen-VL's grounding and vision control tokens, in Qwen's order: a sampled `<|image_pad|>` breaks the next
forward."""
INTERNVL_SUPPRESSED = (
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<video>",
)
"""InternVL3's image and grounding tokens, in its tokenizer's order."""

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("qwen2_vl", QWEN_SUPPRESSED, Prefill.ROPE_DELTAS, True, _qwen_pixels),
        Family("qwen2_5_vl", QWEN_SUPPRESSED, Prefill.ROPE_DELTAS, True, _qwen_pixels),
        Family("qwen3_vl", QWEN_SUPPRESSED, Prefill.ROPE_DELTAS, True, _qwen_pixels),
        Family("internvl", INTERNVL_SUPPRESSED, Prefill.PLAIN, False, _internvl_pixels),
    )
}
"""Known families by `config.model_type`."""
GENERIC = Family("generic", (), Prefill.NONE, None, None)


def family_of(config: Any) -> Family:
    """The family of a model config (`model.config`), `GENERIC` when its `model_type` has no entry."""
    return FAMILIES.get(getattr(config, "model_type", None), GENERIC)
