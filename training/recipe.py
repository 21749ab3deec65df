"""A training recipe: the game, reward, scheduler and loss options plus rollout, optimiser and run settings.

Recipes are YAML files with one section per dataclass (`game:`, `reward:`, `scheduler:`, `loss:`, `rollout:`,
`optim:`, `lora:`, `parallel:`) and run settings at the top level. Shipped recipes live in `recipes/` (`paper`,
`tiny-cpu`, `tiny-cpu-fsdp`); `--set section.field=value` overrides any field, values read as YAML scalars.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datagen.errors import ConfigError
from training.config import GameConfig, LossConfig, RewardConfig, SchedulerConfig
from training.parallel import STRATEGIES

RECIPES_DIR = Path(__file__).parent / "recipes"
PRECISIONS = ("bf16", "fp32")
ROLLOUT_BACKENDS = ("hf", "vllm")


@dataclass(frozen=True)
class RolloutConfig:
    """How games are played each step."""

    games_per_step: int = 8
    """Games played per training step, across all processes; their turns are batched into one `generate` each."""
    num_samples: int = 8
    """G: samples per decision prompt (each civilian's vote, or the judge), normalised as one group (paper: 8)."""
    max_new_tokens: int = 1024
    """Longest completion of any turn, in tokens (paper: 1024)."""
    temperature: float = 0.8
    """Sampling temperature of every turn (paper: 0.8)."""
    max_pixels: int = 28 * 28 * 1024
    """Images are resized to at most this many pixels (28 × 28 pixels make one visual token)."""
    micro_batch_size: int = 4
    """Completions per training forward; the step's gradient accumulates over its micro-batches."""
    max_rows_per_call: int = 0
    """Most prompts x samples one `generate` call takes; larger turns are split. 0: as many as fit in the free GPU
    memory (the KV cache of the longest row decides), unlimited on CPU."""
    prune_every: int = 64
    """Every this many new tokens, rows that have ended leave the `generate` batch and its KV cache, so they stop
    costing compute; 0: they stay (decoding padding) until the longest row of the call ends."""
    backend: str = "hf"
    """`hf` (transformers' `generate`, the default) or `vllm` (a colocated vLLM engine per GPU; extra `vllm`)."""
    vllm_gpu_memory_utilization: float = 0.3
    """With `backend: vllm`, the share of each GPU the engine may take (weights and KV cache)."""

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value."""
        for name, minimum in (("games_per_step", 1), ("max_new_tokens", 1), ("micro_batch_size", 1)):
            _check_int(f"rollout {name}", getattr(self, name), minimum)
        _check_int("rollout num_samples (G)", self.num_samples, 2)
        _check_int("rollout max_pixels", self.max_pixels, 28 * 28)
        _check_int("rollout max_rows_per_call", self.max_rows_per_call, 0)
        _check_int("rollout prune_every", self.prune_every, 0)
        if self.backend not in ROLLOUT_BACKENDS:
            raise ConfigError(f"rollout backend must be one of {', '.join(ROLLOUT_BACKENDS)}, got {self.backend!r}")
        utilization = self.vllm_gpu_memory_utilization
        if isinstance(utilization, bool) or not isinstance(utilization, int | float) or not 0 < utilization < 1:
            raise ConfigError(f"rollout vllm_gpu_memory_utilization must be in (0, 1), got {utilization!r}")
        if not isinstance(self.temperature, int | float) or not self.temperature > 0:
            raise ConfigError(f"rollout temperature must be a number > 0, got {self.temperature!r}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a cosine learning-rate schedule after a linear warm-up."""

    lr: float = 1e-5
    """Peak learning rate (paper: 1e-5)."""
    warmup_ratio: float = 0.1
    """Fraction of `max_steps` spent warming up linearly from 0 (paper: 0.1)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm; 0 = no clipping."""
    freeze_vision: bool = False
    """Keep the vision tower (encoder and merger) frozen: less optimizer state and activation memory."""

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value."""
        if not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ConfigError(f"optim lr must be a number > 0, got {self.lr!r}")
        if not isinstance(self.warmup_ratio, int | float) or not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"optim warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        for name in ("weight_decay", "max_grad_norm"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"optim {name} must be a number >= 0, got {value!r}")
        if len(self.betas) != 2 or not all(0 <= beta < 1 for beta in self.betas):
            raise ConfigError(f"optim betas must be two numbers in [0, 1), got {self.betas!r}")
        if not isinstance(self.freeze_vision, bool):
            raise ConfigError(f"optim freeze_vision must be true or false, got {self.freeze_vision!r}")


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters (peft) instead of a full fine-tune; the reference is the model with its adapters disabled."""

    rank: int = 0
    """Adapter rank r; 0 = full fine-tune (paper)."""
    alpha: int = 32
    """Scale numerator: adapters add (alpha / r) B A to each target weight."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    """Names of the language model's linear layers that get adapters (the vision tower gets none)."""

    @property
    def enabled(self) -> bool:
        return self.rank > 0

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value."""
        _check_int("lora rank", self.rank, 0)
        _check_int("lora alpha", self.alpha, 1)
        if not self.target_modules or not all(isinstance(name, str) for name in self.target_modules):
            raise ConfigError(f"lora target_modules must be a list of module names, got {self.target_modules!r}")


@dataclass(frozen=True)
class ParallelConfig:
    """How the policy is spread over the processes `torchrun` or `accelerate launch` started (see `parallel.py`)."""

    strategy: str = "auto"
    """`auto` (ddp with several processes, none with one), `none`, `ddp`, or `fsdp2` (full sharding)."""

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value."""
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"parallel strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")


@dataclass(frozen=True)
class Recipe:
    """Everything a training run needs besides the data, the model and the output folder."""

    max_steps: int = 100
    """Training steps (iterations), each one game batch and one optimiser step (paper: 100)."""
    seed: int = 0
    """Run seed: data order, games and sampling derive from it."""
    precision: str = "bf16"
    """`bf16` mixed precision on GPUs (CPU runs always use fp32), or `fp32`."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass on GPUs (saves memory); ignored on CPU."""
    save_every: int = 25
    """Save a checkpoint every this many steps (and always after the last step)."""
    keep_checkpoints: int = 2
    """Keep only the newest this many checkpoints; 0 keeps all."""
    trackers: str = "all"
    """Experiment trackers for `accelerate` (`all` = whichever of TensorBoard/W&B is installed, or `none`)."""
    cpu_threads: int = 0
    """Torch threads of CPU runs; 0 keeps torch's default (one per core). On small shared machines 1 is fastest."""
    log_games: int | None = None
    """Games per step written to `games.jsonl` (the first ones of the step); None = all, 0 = no file."""
    checkpoint_dtype: str = "bf16"
    """Dtype of the weights in checkpoints' Hugging Face folders (`bf16` or `fp32`); the exact fp32 training
    state for resuming is saved beside them regardless."""
    game: GameConfig = field(default_factory=GameConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)

    @property
    def warmup_steps(self) -> int:
        """Warm-up steps derived from `optim.warmup_ratio`."""
        return int(round(self.optim.warmup_ratio * self.max_steps))

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad value, before anything is loaded."""
        _check_int("max_steps", self.max_steps, 1)
        _check_int("seed", self.seed, 0)
        _check_int("save_every", self.save_every, 1)
        _check_int("keep_checkpoints", self.keep_checkpoints, 0)
        _check_int("cpu_threads", self.cpu_threads, 0)
        if self.log_games is not None:
            _check_int("log_games", self.log_games, 0)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.trackers not in ("all", "none"):
            raise ConfigError(f"trackers must be 'all' or 'none', got {self.trackers!r}")
        if self.checkpoint_dtype not in PRECISIONS:
            raise ConfigError(f"checkpoint_dtype must be one of {', '.join(PRECISIONS)}, got {self.checkpoint_dtype!r}")
        for section in (self.game, self.reward, self.scheduler, self.loss, self.rollout, self.optim, self.lora):
            section.validate()
        self.parallel.validate()
        if self.lora.enabled and self.rollout.backend == "vllm":
            raise ConfigError("lora with rollout backend vllm is not supported: use backend hf, or a full fine-tune")
        if self.lora.enabled and self.parallel.strategy == "fsdp2":
            raise ConfigError(
                "lora with parallel strategy fsdp2 is not supported: with adapters the frozen base model is small "
                "enough to replicate in bf16 (e.g. 16.6 GB for 7B); use parallel.strategy=ddp (or auto)"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested values, as written to `recipe.json` beside the run's outputs."""
        return dataclasses.asdict(self)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


SECTIONS = {
    "game": GameConfig,
    "reward": RewardConfig,
    "scheduler": SchedulerConfig,
    "loss": LossConfig,
    "rollout": RolloutConfig,
    "optim": OptimConfig,
    "lora": LoraConfig,
    "parallel": ParallelConfig,
}


def recipe_from_dict(values: dict[str, Any], *, source: str) -> Recipe:
    """Build a recipe from nested plain values; unknown keys are errors, naming `source`."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: a recipe must be a mapping of sections, got {type(values).__name__}")
    top_fields = {f.name for f in dataclasses.fields(Recipe)} - set(SECTIONS)
    unknown = set(values) - top_fields - set(SECTIONS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown recipe key(s) {sorted(unknown)}; known: {sorted(top_fields | set(SECTIONS))}"
        )
    kwargs: dict[str, Any] = {key: values[key] for key in top_fields if key in values}
    for name, cls in SECTIONS.items():
        section = values.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: section {name!r} must be a mapping, got {section!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        if set(section) - known:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(set(section) - known)} in {name!r}; known: {sorted(known)}"
            )
        if name == "optim" and "betas" in section:
            section = {**section, "betas": tuple(section["betas"])}
        if name == "lora" and "target_modules" in section:
            section = {**section, "target_modules": tuple(section["target_modules"])}
        kwargs[name] = cls(**section)
    return Recipe(**kwargs)


def load_recipe(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """A shipped recipe by name (`paper`, `tiny-cpu`) or a YAML file, with `section.field=value` overrides applied.

    Raises:
        ConfigError: unknown recipe, unreadable YAML, unknown key or bad value (after `validate`).
    """
    path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        path = Path(name_or_path)
    if not path.is_file():
        shipped = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
        raise ConfigError(f"--recipe {name_or_path}: neither a shipped recipe ({', '.join(shipped)}) nor a YAML file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"--recipe {path}: not valid YAML: {error}") from error
    values = _numbers_read(values)
    for override in overrides:
        _apply_override(values, override)
    recipe = recipe_from_dict(values, source=str(path))
    recipe.validate()
    return recipe


def _apply_override(values: dict[str, Any], override: str) -> None:
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {override!r}: expected key=value, e.g. rollout.num_samples=4")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {override!r}: value is not a YAML scalar: {error}") from error
    value = _number_or_text(value)
    *sections, leaf = key.strip().split(".")
    target = values
    for section in sections:
        target = target.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"--set {override!r}: {section!r} is not a section")
    target[leaf] = value


def _numbers_read(values: Any) -> Any:
    """The recipe with `_number_or_text` applied to every leaf."""
    if isinstance(values, dict):
        return {key: _numbers_read(value) for key, value in values.items()}
    return _number_or_text(values)


def _number_or_text(value: Any) -> Any:
    """YAML 1.1 reads `1e-5` as text; a number is meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
