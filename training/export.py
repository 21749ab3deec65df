"""`vzero export-model`: a checkpoint as a standalone model folder that VLMEvalKit and lmms-eval load as it is.

The folder holds only what an evaluator reads: `config.json` (whose `architectures` and `model_type` are what
`AutoModelForImageTextToText` maps), the bf16 safetensors, `generation_config.json`, the starting model's processor,
tokenizer and chat-template files, and `vision_zero.json` (which step of which run). Two evaluators pick a model class
by more than the config:
- VLMEvalKit's `Qwen2VLChat` (vlmeval/vlm/qwen2_vl/model.py) loads Qwen2.5-VL classes only when the model *path*
  contains "2.5", "2_5" or "qwen25" (and Qwen2-VL ones otherwise; "omni" selects Qwen-Omni), so the folder's path
  is checked against that rule before anything is written;
- lmms-eval takes the class from `--model` (`qwen2_vl`, `qwen2_5_vl`, `qwen3_vl`, `internvl_hf`, or the generic
  `huggingface`), which the printed command names.
VLMEvalKit's `InternVLChat` loads OpenGVLab's original remote-code checkpoints only (`trust_remote_code`), not
transformers' native InternVL classes, so for InternVL only the lmms-eval command is given.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datagen.errors import ConfigError
from datagen.files import atomic_write_text, staged_folder
from datagen.loading import public_name
from training.checkpoint import CHECKPOINTS, PREFIX, RUN_FILE, STATE_JSON, checkpoint_dir, latest_checkpoint
from training.processor_files import check_chat_template, copy_processor_files

MODEL_FILES = ("config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json")
PROVENANCE = "vision_zero.json"
QWEN25_MARKERS = ("2.5", "2_5", "qwen25")
"""What VLMEvalKit's `Qwen2VLChat` looks for in a model path to load Qwen2.5-VL classes."""
VLMEVALKIT_DATA = {"MathVista_MINI": "MathVista", "MathVision_MINI": "MathVision", "LogicVista": "LogicVista"}
"""Benchmarks of the paper in VLMEvalKit (dataset name: class) for the printed example."""
LMMS_EVAL_TASKS = "mathvista_testmini,mathvision_testmini,logicvista_reasoning"
"""The same benchmarks as lmms-eval tasks."""


@dataclass(frozen=True)
class Evaluators:
    """How the two evaluators load one model family."""

    lmms_eval_model: str
    """lmms-eval's `--model` name for the family."""
    vlmevalkit_class: str | None
    """VLMEvalKit's model class (`"class"` in its `--config` JSON); None where none loads the folder."""
    must_contain: tuple[str, ...] = ()
    """The model path must contain one of these (lower case) for VLMEvalKit to pick the family's classes."""
    must_not_contain: tuple[str, ...] = ()
    """... and none of these."""


EVALUATORS: dict[str, Evaluators] = {
    "qwen2_vl": Evaluators("qwen2_vl", "Qwen2VLChat", must_not_contain=(*QWEN25_MARKERS, "omni")),
    "qwen2_5_vl": Evaluators("qwen2_5_vl", "Qwen2VLChat", must_contain=QWEN25_MARKERS, must_not_contain=("omni",)),
    "qwen3_vl": Evaluators("qwen3_vl", "Qwen3VLChat", must_not_contain=("omni",)),
    "internvl": Evaluators("internvl_hf", None),
}
"""By `config.model_type`; other families get lmms-eval's generic `huggingface` model."""
GENERIC = Evaluators("huggingface", None)


@dataclass(frozen=True)
class Exported:
    """What `export_model` wrote and how to evaluate it."""

    out: Path
    step: int
    model_type: str
    commands: dict[str, str]
    """Evaluator name -> the shell commands that evaluate the folder."""


def path_problem(out: Path, model_type: str) -> str | None:
    """Why VLMEvalKit would load a folder at `out` with the wrong classes; None when it would not."""
    rule = EVALUATORS.get(model_type, GENERIC)
    path = str(out.resolve()).lower()
    if rule.must_contain and not any(marker in path for marker in rule.must_contain):
        markers = " or ".join(f"'{marker}'" for marker in rule.must_contain)
        return (
            f"VLMEvalKit loads a {model_type} folder with the right classes only when its path contains {markers}; "
            f"name it e.g. {out.name}-qwen2.5-vl"
        )
    found = [marker for marker in rule.must_not_contain if marker in path]
    if found:
        return f"VLMEvalKit would load a {model_type} folder whose path contains {found} with other classes; rename it"
    return None


def find_checkpoint(run_dir: Path, step: int | None) -> Path:
    """The checkpoint of `step` in a run folder (the newest when None).

    Raises:
        ConfigError: `run_dir` is not a run folder of `vzero train`, or has no such (complete) checkpoint.
    """
    if not (run_dir / RUN_FILE).is_file():
        raise ConfigError(f"{run_dir} is not a run folder written by `vzero train` (it has no {RUN_FILE})")
    if step is None:
        return latest_checkpoint(run_dir)
    folder = checkpoint_dir(run_dir, step)
    if not (folder / STATE_JSON).is_file():
        steps = sorted(int(path.name[len(PREFIX) :]) for path in (run_dir / CHECKPOINTS).glob(f"{PREFIX}*[0-9]"))
        raise ConfigError(f"--step {step}: {run_dir} has no complete checkpoint of that step (it has {steps})")
    return folder


def export_model(run_dir: Path, out: Path, *, step: int | None = None) -> Exported:
    """Write the checkpoint of `step` (default: the newest) of `run_dir` as a standalone folder `out`.

    Raises:
        ConfigError: before anything is written: no such run or checkpoint, `out` not new, a checkpoint without a chat
            template or whose config does not name the class transformers maps its model type to, or a path that
            VLMEvalKit would load with the wrong classes.
    """
    checkpoint = find_checkpoint(run_dir, step)
    config = json.loads((checkpoint / "config.json").read_text())
    model_type = config.get("model_type", "")
    check_architecture(config, checkpoint)
    check_chat_template(checkpoint, str(checkpoint))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder; export into a new one")
    problem = path_problem(out, model_type)
    if problem is not None:
        raise ConfigError(f"{out}: {problem}")
    state = json.loads((checkpoint / STATE_JSON).read_text())
    run = json.loads((run_dir / RUN_FILE).read_text())
    provenance = {
        "step": state["step"],
        "base_model": public_name(run["model"]),
        "data": public_name(run["data"]),
        "recipe": state["recipe"],
    }
    with staged_folder(out) as partial:
        for pattern in MODEL_FILES:
            for path in sorted(checkpoint.glob(pattern)):
                shutil.copyfile(path, partial / path.name)
        copy_processor_files(checkpoint, partial)
        atomic_write_text(partial / PROVENANCE, json.dumps(provenance, indent=2) + "\n")
    return Exported(out, state["step"], model_type, evaluation_commands(out, model_type))


def check_architecture(config: dict[str, Any], checkpoint: Path) -> None:
    """Raise `ConfigError` unless `config.json` names the class `AutoModelForImageTextToText` maps its model type to."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    expected = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(config.get("model_type", ""))
    if expected is None or expected not in config.get("architectures", []):
        raise ConfigError(
            f"{checkpoint}/config.json: model_type {config.get('model_type')!r} with architectures "
            f"{config.get('architectures')} does not name the image-text-to-text class {expected!r}"
        )


def evaluation_commands(out: Path, model_type: str) -> dict[str, str]:
    """The shell commands that evaluate `out` with lmms-eval and, where it can load it, VLMEvalKit."""
    rule = EVALUATORS.get(model_type, GENERIC)
    path = str(out.resolve())
    commands = {
        "lmms-eval": (
            f"python -m lmms_eval --model {rule.lmms_eval_model} --model_args pretrained={path} "
            f"--tasks {LMMS_EVAL_TASKS} --batch_size 1 --output_path lmms-eval-logs/"
        )
    }
    if rule.vlmevalkit_class is not None:
        config = {
            "model": {out.name: {"class": rule.vlmevalkit_class, "model_path": path}},
            "data": {name: {"class": cls, "dataset": name} for name, cls in VLMEVALKIT_DATA.items()},
        }
        commands["VLMEvalKit"] = (
            f"cat > {out.name}-vlmevalkit.json <<'EOF'\n{json.dumps(config, indent=2)}\nEOF\n"
            f"python run.py --config {out.name}-vlmevalkit.json --work-dir vlmevalkit-outputs"
        )
    return commands
