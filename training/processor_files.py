"""A model's processor files (tokenizer, image/video processor configs, chat template): finding and copying them.

A checkpoint carries the starting model's own files, byte for byte, instead of files re-derived from the processor
object training used: that object may be an image-only fallback (no torchvision) and has training's `max_pixels`
applied, and saving it would bake both into the checkpoint. With the starting model's files, `AutoProcessor` loads a
checkpoint wherever it loads the starting model, at the starting model's resolution.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

from datagen.errors import ConfigError

PROCESSOR_FILE_PATTERNS = (
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "chat_template.*",
    "additional_chat_templates/*",
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
)
"""The file names `transformers` reads a tokenizer, a processor and chat templates from."""
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def is_processor_file(relative: str) -> bool:
    """Whether a file at `relative` (posix, inside a model folder) belongs to the processor."""
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in PROCESSOR_FILE_PATTERNS)


def list_processor_files(folder: Path) -> list[str]:
    """Relative paths of the processor files in a model folder, sorted."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and is_processor_file(path.relative_to(folder).as_posix())
    )


def processor_folder(source: str | Path) -> Path:
    """A local folder holding the processor files of a model folder or Hub id (downloaded, without the weights).

    Raises:
        ConfigError: the Hub id cannot be reached or has none of the files, or the model has no chat template.
    """
    local = Path(source)
    if not local.exists():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            local = Path(snapshot_download(str(source), allow_patterns=list(PROCESSOR_FILE_PATTERNS)))
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
            raise ConfigError(f"--model {source}: cannot fetch its tokenizer and processor files: {error}") from error
    check_chat_template(local, str(source))
    return local


def check_chat_template(folder: Path, name: str) -> None:
    """Raise `ConfigError` when a model folder has no chat template: the game's prompts are chat messages."""
    if (
        any((folder / file).is_file() for file in CHAT_TEMPLATE_FILES)
        or (folder / "additional_chat_templates").is_dir()
    ):
        return
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file() and json.loads(tokenizer_config.read_text()).get("chat_template"):
        return
    raise ConfigError(
        f"--model {name}: has no chat template (no {' or '.join(CHAT_TEMPLATE_FILES)}, no 'chat_template' in "
        "tokenizer_config.json); the game's prompts are chat messages, so use an instruction-tuned checkpoint"
    )


def copy_processor_files(source: Path, target: Path) -> list[str]:
    """Copy every processor file of model folder `source` into `target`, byte for byte; the relative paths copied."""
    copied = list_processor_files(source)
    for relative in copied:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / relative, destination)
    return copied
