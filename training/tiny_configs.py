"""The architectures of the tiny test models: per family, its config, control tokens, chat template and image processor.

Sizes are the smallest that run every real code path (vision tower, projector or merger, M-RoPE or 1-D RoPE);
token ids come from the offline tokenizer. The image processors carry the stock checkpoints' settings (Qwen's
12,845,056 maximum pixels, InternVL's tiling), so that a tiny model's folder looks like its Hub counterpart's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from training.families import INTERNVL_SUPPRESSED, QWEN_SUPPRESSED

TEXT_HIDDEN = 64
END_OF_TEXT = "<|endoftext|>"
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
QWEN_CONTROL_TOKENS = (*CHAT_TOKENS, *QWEN_SUPPRESSED)
"""Qwen's control tokens, in Qwen's order, so that the ids keep Qwen's relative layout."""
INTERNVL_CONTROL_TOKENS = (*CHAT_TOKENS, *INTERNVL_SUPPRESSED)
"""InternVL3's tokens on top of its Qwen2.5 tokenizer."""
INTERNVL_NAMED_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
"""The tokenizer attributes `InternVLProcessor` reads (`tokenizer.start_image_token`, ...)."""

# Qwen2-VL's and Qwen2.5-VL's chat template (images as `<|vision_start|><|image_pad|><|vision_end|>`).
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
# Qwen3-VL's shape: no default system message; the same vision placeholders.
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# InternVL3's (-hf) shape: each image is one `<IMG_CONTEXT>` line, which the processor expands into its tiles.
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif content['type'] == 'video' %}<video>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinySpec:
    """How to build one family's tiny model."""

    control_tokens: tuple[str, ...]
    """Special tokens added after the BPE vocabulary, in the real tokenizer's order."""
    eos_token: str
    """End of an assistant turn."""
    chat_template: str
    processor_class: str
    """The processor class the real checkpoints name (`processor_class` in their files)."""
    config: Callable[[Mapping[str, int], int], Any]
    """`(token ids by token, padded vocabulary size) -> the model's config`."""
    image_processor: Callable[[], Any]
    """The PIL image processor with the stock checkpoint's settings."""
    named_tokens: Mapping[str, str] = field(default_factory=dict)
    """Tokenizer attributes naming special tokens, which some processors read."""
    processor_options: Mapping[str, Any] = field(default_factory=dict)
    """The processor's own settings, written to `processor_config.json` (InternVL: tokens per tile)."""


def _text(ids: Mapping[str, int], vocab_size: int, **extra: Any) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": TEXT_HIDDEN,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "bos_token_id": ids[END_OF_TEXT],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids[END_OF_TEXT],
        **extra,
    }


def _qwen_ids(ids: Mapping[str, int]) -> dict[str, int]:
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def _mrope(section: list[int], **extra: Any) -> dict[str, Any]:
    """M-RoPE with `section` frequencies for (time, height, width); they sum to head_dim / 2 = 8."""
    return {"rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section, **extra}}


def qwen2_vl_config(ids: Mapping[str, int], vocab_size: int):
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        text_config=_text(ids, vocab_size, **_mrope([2, 3, 3])),
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": TEXT_HIDDEN,
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **_qwen_ids(ids),
    )


def qwen2_5_vl_config(ids: Mapping[str, int], vocab_size: int):
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config=_text(ids, vocab_size, head_dim=16, **_mrope([2, 3, 3])),
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "out_hidden_size": TEXT_HIDDEN,
            "fullatt_block_indexes": [1],
        },
        **_qwen_ids(ids),
    )


def qwen3_vl_config(ids: Mapping[str, int], vocab_size: int):
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(
        text_config=_text(ids, vocab_size, head_dim=16, **_mrope([4, 2, 2], mrope_interleaved=True)),
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": TEXT_HIDDEN,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [1],
        },
        **_qwen_ids(ids),
    )


INTERNVL_TILE = 56
"""Tile side of the tiny InternVL (stock: 448): 4 x 4 patches of 14 pixels."""
INTERNVL_TILE_TOKENS = (INTERNVL_TILE // 14) ** 2 // 4
"""Visual tokens per tile after the 2 x 2 pixel shuffle (stock: 256)."""


def internvl_config(ids: Mapping[str, int], vocab_size: int):
    from transformers import InternVLConfig

    return InternVLConfig(
        text_config={"model_type": "qwen2", **_text(ids, vocab_size)},
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": [INTERNVL_TILE, INTERNVL_TILE],
            "patch_size": [14, 14],
        },
        image_token_id=ids["<IMG_CONTEXT>"],
        image_seq_length=INTERNVL_TILE_TOKENS,
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )


def qwen_image_processor(patch_size: int = 14, min_pixels: int = 3136, max_pixels: int = 12845056):
    """Qwen-VL's PIL image processor with the stock checkpoints' pixel bounds."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        patch_size=patch_size, merge_size=2, temporal_patch_size=2, min_pixels=min_pixels, max_pixels=max_pixels
    )


def internvl_image_processor():
    """InternVL3's tiling image processor (GOT-OCR2's), with the tiny tile size."""
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    return GotOcr2ImageProcessorPil(
        size={"height": INTERNVL_TILE, "width": INTERNVL_TILE},
        crop_to_patches=True,
        min_patches=1,
        max_patches=12,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )


TINY_SPECS: dict[str, TinySpec] = {
    "qwen2_vl": TinySpec(
        QWEN_CONTROL_TOKENS, "<|im_end|>", QWEN_VL_CHAT_TEMPLATE, "Qwen2VLProcessor", qwen2_vl_config,
        qwen_image_processor,
    ),
    "qwen2_5_vl": TinySpec(
        QWEN_CONTROL_TOKENS, "<|im_end|>", QWEN_VL_CHAT_TEMPLATE, "Qwen2_5_VLProcessor", qwen2_5_vl_config,
        qwen_image_processor,
    ),
    "qwen3_vl": TinySpec(
        QWEN_CONTROL_TOKENS, "<|im_end|>", QWEN3_VL_CHAT_TEMPLATE, "Qwen3VLProcessor", qwen3_vl_config,
        lambda: qwen_image_processor(patch_size=16, min_pixels=65536, max_pixels=16777216),
    ),
    "internvl": TinySpec(
        INTERNVL_CONTROL_TOKENS, "<|im_end|>", INTERNVL_CHAT_TEMPLATE, "InternVLProcessor", internvl_config,
        internvl_image_processor, INTERNVL_NAMED_TOKENS, {"image_seq_length": INTERNVL_TILE_TOKENS},
    ),
}  # fmt: skip
"""Tiny model specs by `config.model_type`."""
