"""Loading a VLM and its processor from a folder or a Hub id; an image-only processor where torchvision is missing.

Without torchvision, `AutoProcessor` cannot build the processors of video-capable families (Qwen-VL, InternVL: their
video processors need it), so the fallback loads the family's own processor class without its video processor,
from the same files. Training's `max_pixels` is applied to the loaded processor in memory only (`families`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig
from transformers.processing_utils import ProcessorMixin
from transformers.utils import is_torchvision_available

from datagen.errors import ConfigError
from training.families import family_of
from training.processor_files import check_chat_template


def image_only(processor_class: type[ProcessorMixin]) -> type[ProcessorMixin]:
    """`processor_class` without its video processor: it loads and runs images and text from the same files.

    The processor's parts are the `__init__` arguments `get_attributes` names; leaving the video processor out of
    them makes `from_pretrained` skip it and `__init__` receive None for it, which image and text inputs never use.
    """
    parts = [name for name in processor_class.get_attributes() if "video" not in name]
    return type(
        f"ImageOnly{processor_class.__name__}",
        (processor_class,),
        {"get_attributes": classmethod(lambda cls: list(parts)), "__module__": __name__},
    )


@dataclass(frozen=True)
class LoadedModel:
    """A policy model and the processor that feeds it."""

    model: torch.nn.Module
    processor: Any


def check_model_source(source: str | Path) -> None:
    """Fail fast on a model path that cannot be loaded, before any weights are read.

    Raises:
        ConfigError: a local path that does not exist, has no `config.json`, is of a model type transformers cannot
            load as a vision-language model (`AutoModelForImageTextToText`), or has no chat template; or a string
            that is not a Hub id. (A Hub model's are checked when its processor files and config are fetched.)
    """
    local = Path(source)
    if local.exists():
        if not (local / "config.json").is_file():
            raise ConfigError(f"--model {source}: the folder has no config.json (not a Hugging Face model folder)")
        check_model_type(json.loads((local / "config.json").read_text()).get("model_type"), str(source))
        check_chat_template(local, str(source))
        return
    text = str(source)
    if text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise ConfigError(
            f"--model {source}: no such folder, and not a Hub model id like 'Qwen/Qwen2.5-VL-7B-Instruct'"
        )


def check_model_type(model_type: str | None, name: str) -> None:
    """Raise `ConfigError` unless `AutoModelForImageTextToText` has a class for `model_type` (any such family trains:
    the known ones with their own table entry, the others through the generic path)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ConfigError(
            f"--model {name}: model type {model_type!r} is not a vision-language model transformers can load with "
            "AutoModelForImageTextToText (e.g. qwen2_vl, qwen2_5_vl, qwen3_vl, internvl, llava, gemma3)"
        )


def load_processor(source: str | Path, *, max_pixels: int | None = None):
    """The model's processor, left-padding, with at most `max_pixels` per image where its family says how.

    `AutoProcessor` where torchvision exists; else the model type's processor class without its video processor.

    Raises:
        ConfigError: the model type has no processor class in `transformers`.
    """
    from transformers import AutoConfig, AutoProcessor
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    config = AutoConfig.from_pretrained(str(source))
    if is_torchvision_available():
        processor = AutoProcessor.from_pretrained(str(source))
    elif type(config) in PROCESSOR_MAPPING:
        processor = image_only(PROCESSOR_MAPPING[type(config)]).from_pretrained(str(source))
    else:
        raise ConfigError(f"--model {source}: transformers has no processor class for model type {config.model_type!r}")
    family_of(config).limit_pixels(processor, max_pixels)
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


def processor_tokens(processor: Any) -> set[str]:
    """The special tokens a processor writes into prompts for images and videos (`image_token`, `video_token`, ...)."""
    return {
        value
        for name, value in vars(processor).items()
        if name.endswith("_token") and isinstance(value, str) and value in processor.tokenizer.get_vocab()
    }


def suppressed_token_ids(model: torch.nn.Module, processor: Any) -> list[int]:
    """Ids a policy must never sample: the processor's image and video tokens, its family's other control tokens, and
    the padded, unused tail of the vocabulary.

    A sampled image token makes the next forward fail ("image features and image tokens do not match").
    """
    tokenizer = processor.tokenizer
    vocab_size = model.get_output_embeddings().weight.shape[0]
    tokens = processor_tokens(processor) | set(family_of(model.config).suppressed_tokens)
    known = {tokenizer.convert_tokens_to_ids(token) for token in tokens}
    known -= {tokenizer.unk_token_id, None}
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
