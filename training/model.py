"""Loading a VLM and its processor from a local folder or a Hub id, with an image-only processor without torchvision.

Without torchvision, `AutoProcessor` cannot build Qwen-VL processors (their video processor needs it), so the
image-only subclass below takes over; it saves itself under Qwen's own processor class so that checkpoints load
with `AutoProcessor` (e.g. in VLMEvalKit) wherever torchvision is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, Qwen2_5_VLProcessor
from transformers.processing_utils import ProcessorMixin
from transformers.utils import is_torchvision_available

from datagen.errors import ConfigError

VISION_SPECIAL_TOKENS = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
)
# Images are resized to at most this many pixels; 28 × 28 pixels make one visual token after merging.
DEFAULT_MAX_PIXELS = 28 * 28 * 16
DEFAULT_MIN_PIXELS = 28 * 28 * 4


class ImageOnlyQwenVLProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor without the video processor (which needs torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    def to_dict(self) -> dict[str, Any]:
        """Save under Qwen's class name so `AutoProcessor` loads the checkpoint where torchvision exists."""
        output = super().to_dict()
        output["processor_class"] = Qwen2_5_VLProcessor.__name__
        return output


def make_image_processor(*, max_pixels: int = DEFAULT_MAX_PIXELS, min_pixels: int = DEFAULT_MIN_PIXELS):
    """Qwen2-VL's PIL image processor (no torchvision needed), bounded to `max_pixels` per image."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)


@dataclass(frozen=True)
class LoadedModel:
    """A policy model and the processor that feeds it."""

    model: torch.nn.Module
    processor: Any


def check_model_source(source: str | Path) -> None:
    """Fail fast on a model path that cannot be loaded, before any weights are read.

    Raises:
        ConfigError: a local path that does not exist or has no `config.json`, or a string that is not a Hub id.
    """
    local = Path(source)
    if local.exists():
        if not (local / "config.json").is_file():
            raise ConfigError(f"--model {source}: the folder has no config.json (not a Hugging Face model folder)")
        return
    text = str(source)
    if text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise ConfigError(
            f"--model {source}: no such folder, and not a Hub model id like 'Qwen/Qwen2.5-VL-7B-Instruct'"
        )


def load_processor(source: str | Path, *, max_pixels: int | None = None):
    """The model's processor: `AutoProcessor` where torchvision exists, else the image-only Qwen processor."""
    from transformers import AutoProcessor

    pixel_bounds = {} if max_pixels is None else {"max_pixels": max_pixels, "min_pixels": min(max_pixels, 3136)}
    if is_torchvision_available():
        processor = AutoProcessor.from_pretrained(str(source), **pixel_bounds)
    else:
        processor = ImageOnlyQwenVLProcessor.from_pretrained(str(source), **pixel_bounds)
    processor.tokenizer.padding_side = "left"
    return processor


def load_model_and_processor(
    source: str | Path, *, dtype: torch.dtype = torch.float32, max_pixels: int | None = None
) -> LoadedModel:
    """Load a vision-language model with `AutoModelForImageTextToText` and its processor.

    Raises:
        ConfigError: the source is not a model folder or Hub id (checked before loading), or does not load.
    """
    from transformers import AutoModelForImageTextToText

    check_model_source(source)
    try:
        model = AutoModelForImageTextToText.from_pretrained(str(source), dtype=dtype)
        processor = load_processor(source, max_pixels=max_pixels)
    except (OSError, ValueError) as error:
        raise ConfigError(f"--model {source}: cannot load a vision-language model from it: {error}") from error
    return LoadedModel(model=model, processor=processor)


VISION_MODULE_NAMES = ("visual", "vision_tower", "vision_model", "multi_modal_projector")
"""Where transformers' VLMs keep their vision encoder and projector (Qwen-VL: `visual`; InternVL, LLaVA: the others)."""


def vision_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The vision encoder and projector of a VLM (for freezing them); ConfigError when none is found."""
    found = [module for name, module in model.named_modules() if name.split(".")[-1] in VISION_MODULE_NAMES]
    if not found:
        raise ConfigError(
            f"optim freeze_vision: {type(model).__name__} has no module named any of {', '.join(VISION_MODULE_NAMES)}"
        )
    return found


def suppressed_token_ids(model: torch.nn.Module, tokenizer) -> list[int]:
    """Ids a policy must never sample: vision/box control tokens and the padded, unused tail of the vocabulary.

    A sampled `<|image_pad|>` makes the next forward fail ("image features and image tokens do not match").
    """
    vocab_size = model.get_output_embeddings().weight.shape[0]
    known = {tokenizer.convert_tokens_to_ids(token) for token in VISION_SPECIAL_TOKENS}
    known.discard(tokenizer.unk_token_id)
    known.discard(None)
    return sorted(known | set(range(len(tokenizer), vocab_size)))


@contextmanager
def blank_generation_config(model: torch.nn.Module) -> Iterator[GenerationConfig]:
    """Put a blank `GenerationConfig` in place of the model's own while the block runs; yield the model's own.

    Sampling: `generate` fills every field our `GenerationConfig` leaves unset (None) from `model.generation_config`,
    and fields whose "off" value is None (min-p, top-h, sequence bias, bad words, stop strings, ...) cannot be set
    off explicitly, so the model's file would switch them on; a blank config leaves transformers' neutral defaults.
    Saving: `save_pretrained` refuses a generation config that fails strict validation (e.g. `top_k` without
    `do_sample`), which some published checkpoints ship; the checkpoint writes the model's own file verbatim instead.
    """
    own = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield own
    finally:
        model.generation_config = own
