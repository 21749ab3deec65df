"""The Iterative-SPO trainer: play batched games, train the active stage, switch stages, log, checkpoint.

Lifecycle (torchtune's): `__init__` checks every option, the data and the output folder before any model loads;
`setup()` loads the policy, the frozen reference, the optimiser and (on `--resume`) the saved state; `train()`
runs the steps; `save_checkpoint(step=...)`; `cleanup()`.

Resume policy: the recipe, model and data must equal the saved run's, except `max_steps`, `save_every`,
`keep_checkpoints`, `trackers` and `cpu_threads` (each override is logged; a longer `max_steps` also stretches
the cosine schedule). Data order, games and sampling follow the checkpoint: step s of a resumed run is step s of an
uninterrupted one, because every step's games and sampling seed derive from (run seed, step, process).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from datagen.errors import ConfigError, DatasetError, InputError, ResumeMismatchError
from datagen.loading import load_pairs
from training.checkpoint import (
    RUN_FILE,
    TrainerState,
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
    load_training_state,
    write_model_folder,
)
from training.checkpoint import save_checkpoint as write_checkpoint
from training.distributed import Processes
from training.game import Game, Role, make_game
from training.iteration import StepOutcome, advance
from training.lora import apply_lora, merged_state_dict
from training.metrics import MetricsLog, StepLog
from training.model import check_model_source, load_model_and_processor, suppressed_token_ids, vision_modules
from training.pairs import PairStream
from training.parallel import Parallelism
from training.processor_files import processor_folder
from training.recipe import Recipe
from training.rewards import RoleBaselines
from training.rollout import Completions, ModelSampler, SamplingConfig, token_logprobs
from training.scheduler import Stage, StageScheduler
from training.selfplay import Trajectory, play_games
from training.trackers import Trackers
from training.transcripts import GAMES_FILE, game_record
from training.update import LossTotals, accumulate_gradients
from training.vllm_rollout import VllmSampler

RESUMABLE_OVERRIDES = (
    "max_steps",
    "save_every",
    "keep_checkpoints",
    "trackers",
    "cpu_threads",
    "log_games",
    "checkpoint_dtype",
    "strategy",
    "max_rows_per_call",
    "prune_every",
)


@dataclass(frozen=True)
class TrainOptions:
    """One training run: where the data and model come from, where outputs go, and the recipe."""

    data: str
    """A dataset folder made by vzero or a Hub dataset id with the pair schema."""
    model: str
    """A local Hugging Face model folder or a Hub model id (e.g. Qwen/Qwen2.5-VL-7B-Instruct)."""
    out: Path
    """Run folder: run.json, metrics.jsonl, checkpoints/step-*/."""
    recipe: Recipe
    """Every training option."""
    resume: bool = False
    """Continue from the newest checkpoint in `out`."""


@dataclass(frozen=True)
class UpdateStats:
    """One optimiser step: its loss statistics, the gradient norm before clipping and its learning rate."""

    totals: LossTotals
    grad_norm: float
    lr: float


class SPOTrainer:
    """Iterative Self-Play Policy Optimisation over a pair dataset."""

    def __init__(self, options: TrainOptions, *, console: Console | None = None) -> None:
        options.recipe.validate()
        check_model_source(options.model)
        self.options = options
        self.recipe = options.recipe
        self.console = console
        self.run_record = {"model": str(options.model), "data": str(options.data), "recipe": self.recipe.to_dict()}
        self.resume_from = self._check_out_folder()
        self.dataset = load_pairs(options.data, split="train")
        self.step = 0

    def _check_out_folder(self) -> Path | None:
        """The checkpoint to resume from (None for a fresh run); refuse to mix a new run into an old folder."""
        out = self.options.out
        if not self.options.resume:
            if list_checkpoints(out):
                raise ConfigError(f"--out {out} already holds checkpoints; pass --resume to continue, or a new --out")
            return None
        checkpoint = latest_checkpoint(out)
        saved = _read_run_record(out / RUN_FILE)
        differences = _differences(saved, self.run_record)
        blocking = {key: value for key, value in differences.items() if key.split(".")[-1] not in RESUMABLE_OVERRIDES}
        if blocking:
            raise ResumeMismatchError(str(out), blocking)
        for key, (old, new) in differences.items():
            self._say(f"resume: {key} overridden: {old!r} -> {new!r}")
        return checkpoint

    def setup(self) -> None:
        """Join the processes, load and spread the policy and reference, the optimiser and, on resume, the state."""
        from transformers import get_cosine_schedule_with_warmup
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self._start_processes()
        self.model = self.parallel.wrap_policy(self._load_policy())
        self.reference = self._load_reference()
        optim = self.recipe.optim
        trainable = [parameter for parameter in self.model.parameters() if parameter.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)
        self.optimizer_steps = 0
        self.optimizer.register_step_post_hook(self._count_optimizer_step)
        self.lr_scheduler = get_cosine_schedule_with_warmup(
            self.optimizer, self.recipe.warmup_steps, self.recipe.max_steps
        )
        rollout = self.recipe.rollout
        self.sampling = SamplingConfig(
            max_new_tokens=rollout.max_new_tokens,
            temperature=rollout.temperature,
            suppressed=tuple(suppressed_token_ids(self._plain_model(), self.processor)),
        )
        self.sampler = self._make_sampler()
        self.stage_scheduler = StageScheduler(self.recipe.scheduler)
        self.baselines = RoleBaselines(self.recipe.reward.baseline_decay)
        self.stream = PairStream(self.dataset, seed=self.recipe.seed)
        is_main = self.processes.is_main
        if is_main:
            self.options.out.mkdir(parents=True, exist_ok=True)
        self.trackers = Trackers(
            self.options.out, enabled=is_main and self.recipe.trackers == "all", config=_flat(self.run_record)
        )
        self.metrics = MetricsLog(self.options.out, trackers=self.trackers, console=self.console, is_main=is_main)
        self.games_log = StepLog(self.options.out / GAMES_FILE, enabled=is_main and self.recipe.log_games != 0)
        if self.resume_from is not None:
            self._load_state(self.resume_from)
        elif is_main:
            (self.options.out / RUN_FILE).write_text(json.dumps(self.run_record, indent=2) + "\n")
        self.metrics.truncate_after(self.step)
        self.games_log.truncate_after(self.step)

    def _start_processes(self) -> None:
        """Join the launcher's processes; the strategy, precision (bf16 on GPUs) and each process's game share."""
        self.processes = Processes.start()
        if self.processes.device.type == "cpu" and self.recipe.cpu_threads:
            torch.set_num_threads(self.recipe.cpu_threads)
        self.use_bf16 = self.processes.device.type == "cuda" and self.recipe.precision == "bf16"
        self.parallel = Parallelism(self.recipe.parallel.strategy, self.processes, bf16=self.use_bf16)
        if self.recipe.rollout.games_per_step % self.processes.world_size:
            raise ConfigError(
                f"rollout games_per_step ({self.recipe.rollout.games_per_step}) must be a multiple of the "
                f"{self.processes.world_size} processes"
            )

    def _load_policy(self) -> torch.nn.Module:
        """The starting model in fp32 (the master weights), with the recipe's memory options applied.

        A resumed run starts from the same model too; its trained weights come from the checkpoint's training state.
        """
        self.processor_files = processor_folder(self.options.model)
        loaded = load_model_and_processor(self.options.model, max_pixels=self.recipe.rollout.max_pixels)
        self.processor = loaded.processor
        policy = loaded.model
        if self.processes.device.type == "cuda" and self.recipe.gradient_checkpointing:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.recipe.optim.freeze_vision:
            for module in vision_modules(policy):
                module.requires_grad_(False)
        if self.recipe.lora.enabled:
            policy = apply_lora(policy, self.recipe.lora)
        return policy

    def _load_reference(self) -> torch.nn.Module | None:
        """The frozen starting model for the KL term: bf16 on GPUs (no master weights needed), sharded like the
        policy under fsdp2. None without a KL term, and under LoRA (the reference is the policy minus adapters)."""
        if self.recipe.loss.kl_coef == 0 or self.recipe.lora.enabled:
            return None
        dtype = torch.bfloat16 if self.use_bf16 else torch.float32
        return self.parallel.wrap_reference(load_model_and_processor(self.options.model, dtype=dtype).model)

    def _make_sampler(self) -> ModelSampler | VllmSampler:
        """transformers' `generate` on the policy itself, or a colocated vLLM engine fed the policy's weights."""
        rollout = self.recipe.rollout
        model_sampler = ModelSampler(
            self._plain_model(),
            self.processor,
            self.sampling,
            max_rows_per_call=rollout.max_rows_per_call,
            prune_every=rollout.prune_every,
            compute_dtype=torch.bfloat16 if self.use_bf16 else torch.float32,
        )
        if rollout.backend == "hf":
            return model_sampler
        if self.processes.device.type != "cuda" or importlib.util.find_spec("vllm") is None:
            raise ConfigError(
                "rollout backend vllm needs a GPU and the vllm extra (pip install 'vision-zero[vllm]'); "
                "use rollout.backend=hf"
            )
        text = self._plain_model().config.get_text_config()
        sampler = VllmSampler(
            self.options.model,
            model_sampler,
            self.sampling,
            vocab_size=text.vocab_size,
            seed=_step_seed(self.recipe.seed, 0, self.processes.rank),
            gpu_memory_utilization=rollout.vllm_gpu_memory_utilization,
            max_model_len=text.max_position_embeddings,
        )
        if self.resume_from is not None:
            sampler.push_weights(self.parallel.full_tensors(self.model, torch.bfloat16))
        return sampler

    def _plain_model(self) -> torch.nn.Module:
        """The `transformers` model inside the wrappers (DDP, peft): what samples and what saves a model folder.

        Under LoRA its layers carry the adapters; sampling through peft's wrapper instead would reach `generate`
        with the model's own generation config, which sampling must not inherit (see `rollout.py`).
        """
        model = self.parallel.module(self.model)
        return model.get_base_model() if self.recipe.lora.enabled else model

    def _count_optimizer_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.optimizer_steps += 1

    def _load_state(self, checkpoint: Path) -> None:
        state = load_trainer_state(checkpoint)
        training_state = self.parallel.training_state(self.model, self.optimizer)
        load_training_state(checkpoint, training_state)
        self.parallel.load_training_state(self.model, self.optimizer, training_state)
        self.lr_scheduler.load_state_dict(state.lr_scheduler)
        # The saved learning rates follow the saved run's schedule; recompute them on this run's (its max_steps).
        schedule = self.lr_scheduler
        for group, base_lr, factor in zip(
            self.optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas, strict=True
        ):
            group["lr"] = base_lr * factor(schedule.last_epoch)
        self.stage_scheduler.load_state_dict(state.scheduler)
        self.baselines.load_state_dict(state.baselines)
        self.stream.position = state.data_position
        self.optimizer_steps = state.optimizer_steps
        self.step = state.step
        self._say(f"resumed from {checkpoint} at step {self.step}")

    def train(self) -> None:
        """Run steps until `max_steps`, checkpointing every `save_every` steps and after the last."""
        while self.step < self.recipe.max_steps:
            metrics = self._train_step()
            self.step += 1
            self.metrics.log(self.step, metrics)
            if self.step % self.recipe.save_every == 0 or self.step == self.recipe.max_steps:
                self.save_checkpoint(step=self.step)

    def _train_step(self) -> dict[str, Any]:
        """Play this step's games, update the active stage, advance baselines and scheduler; the step's metrics."""
        started = time.perf_counter()
        stage = self.stage_scheduler.stage
        torch.manual_seed(_step_seed(self.recipe.seed, self.step, self.processes.rank))
        games, skipped = self._next_games()
        self.model.eval()
        with self.parallel.rollout(self.model):
            trajectory = play_games(
                self.sampler,
                games,
                stage=stage,
                num_samples=self.recipe.rollout.num_samples,
                game_config=self.recipe.game,
                reward_config=self.recipe.reward,
                baselines=self.baselines,
            )
        rollout_seconds = time.perf_counter() - started
        outcome = StepOutcome.combine(self.processes.gather([StepOutcome.of(trajectory)]))
        self._log_games(self.step + 1, trajectory)
        update = self._update(trajectory)
        advance(stage, outcome, self.stage_scheduler, self.baselines)
        seconds = time.perf_counter() - started
        return _step_metrics(stage, trajectory, outcome, update, self, rollout_seconds, seconds, skipped)

    def _log_games(self, step: int, trajectory: Trajectory) -> None:
        """Append the step's first `log_games` games (all by default) to `games.jsonl`."""
        limit = self.recipe.log_games
        if limit == 0:
            return
        played = trajectory.games if limit is None else trajectory.games[:limit]
        records = self.processes.gather(
            [game_record(step, trajectory.stage, game, trajectory.baselines_before) for game in played]
        )
        self.games_log.append(records if limit is None else records[:limit])

    def _next_games(self) -> tuple[list[Game], int]:
        """This process's share of the step's games; records that cannot make a game are skipped and reported."""
        games, skipped = [], 0
        while len(games) < self.recipe.rollout.games_per_step:
            record = next(self.stream)
            rng = np.random.default_rng([self.recipe.seed, self.step, len(games)])
            try:
                games.append(make_game(record, self.recipe.game, rng))
            except InputError as error:
                skipped += 1
                self._say(f"[yellow]skipped pair {error.source}: {error.reason}[/]")
                if skipped > len(self.dataset):
                    raise DatasetError(f"{self.options.data}: no pair record makes a game ({error.reason})") from error
        share = self.recipe.rollout.games_per_step // self.processes.world_size
        first = self.processes.rank * share
        return games[first : first + share], skipped

    def _update(self, trajectory: Trajectory) -> UpdateStats:
        """One optimiser step on the trajectory's completions, accumulating gradients over micro-batches."""
        if isinstance(self.sampler, VllmSampler):
            self.sampler.sleep()
        self.model.train()
        totals = accumulate_gradients(
            self._policy_logprobs,
            self._reference_logprobs if self.recipe.loss.kl_coef > 0 else None,
            trajectory.chunks,
            loss_config=self.recipe.loss,
            micro_batch_size=self.recipe.rollout.micro_batch_size,
            backward=lambda loss, last: self.parallel.backward(self.model, loss, last=last),
        )
        grad_norm = float("nan")
        if self.recipe.optim.max_grad_norm > 0:
            grad_norm = self.parallel.clip_grad_norm(self.model, self.recipe.optim.max_grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if isinstance(self.sampler, VllmSampler):
            self.sampler.wake()
            self.sampler.push_weights(self.parallel.full_tensors(self.model, torch.bfloat16))
        return UpdateStats(totals=totals, grad_norm=grad_norm, lr=lr)

    def _policy_logprobs(self, batch: Completions) -> torch.Tensor:
        with self.parallel.compute():
            return token_logprobs(self.model, batch, self.sampling)

    def _reference_logprobs(self, batch: Completions) -> torch.Tensor:
        """The frozen starting model's log-probs: the reference model, or under LoRA the policy without adapters."""
        with self.parallel.compute():
            if self.reference is not None:
                return token_logprobs(self.reference, batch, self.sampling)
            with self.parallel.module(self.model).disable_adapter():
                return token_logprobs(self.parallel.module(self.model), batch, self.sampling)

    def save_checkpoint(self, *, step: int) -> Path:
        """Write `OUT/checkpoints/step-NNNNNN` (model folder + training state); every process takes part."""
        full = self.parallel.full_state_dict(self.model)
        if self.recipe.lora.enabled and full:
            full = merged_state_dict(full, self.recipe.lora)
        plain = self._plain_model()
        state = TrainerState(
            step=step,
            data_position=self.stream.position,
            scheduler=self.stage_scheduler.state_dict(),
            baselines=self.baselines.state_dict(),
            lr_scheduler=self.lr_scheduler.state_dict(),
            optimizer_steps=self.optimizer_steps,
            recipe=self.recipe.to_dict(),
        )
        path = write_checkpoint(
            self.options.out,
            state=state,
            write_model_folder=lambda folder: write_model_folder(
                folder,
                model=plain,
                state_dict=full,
                processor_files=self.processor_files,
                dtype=self.recipe.checkpoint_dtype,
            ),
            training_state=self.parallel.training_state(self.model, self.optimizer),
            processes=self.processes,
            keep=self.recipe.keep_checkpoints,
        )
        self._say(f"saved {path}")
        return path

    def cleanup(self) -> None:
        """Flush trackers, release the models and leave the process group."""
        if hasattr(self, "trackers"):
            self.trackers.close()
        self.model = self.reference = self.sampler = None
        if hasattr(self, "processes"):
            self.processes.close()

    def _say(self, message: str) -> None:
        if self.console is not None and os.environ.get("RANK", "0") == "0":
            self.console.print(message)


def _step_seed(seed: int, step: int, process: int) -> int:
    """The torch seed of one step on one process: sampling depends on nothing else."""
    return int(np.random.SeedSequence([seed, step, process]).generate_state(1)[0])


def _step_metrics(
    stage: Stage,
    trajectory: Trajectory,
    outcome: StepOutcome,
    update: UpdateStats,
    trainer: SPOTrainer,
    rollout_seconds: float,
    seconds: float,
    skipped: int,
) -> dict[str, Any]:
    """One line of `metrics.jsonl`: game statistics over all processes' games, the rest from this process."""
    games, totals = trajectory.stats, update.totals
    scheduler = trainer.stage_scheduler.stats()
    return {
        "stage": stage.value,
        "next_stage": scheduler["stage"],
        "game/accuracy": outcome.accuracy,
        "game/na_rate": outcome.na_rate,
        "game/invalid_vote_rate": outcome.invalid_vote_rate,
        "game/clue_valid_rate": games.clue_valid_rate,
        "reward/spy": games.reward_spy,
        "reward/civilian": games.reward_civilian,
        "reward/vote": games.reward_vote,
        "baseline/spy": trainer.baselines.values[Role.SPY],
        "baseline/civilian": trainer.baselines.values[Role.CIVILIAN],
        "scheduler/ema_accuracy": scheduler["ema_accuracy"],
        "scheduler/ema_na": scheduler["ema_na"],
        "scheduler/ema_accuracy_raw": scheduler["ema_accuracy_raw"],
        "scheduler/ema_na_raw": scheduler["ema_na_raw"],
        "scheduler/dwell": scheduler["dwell"],
        "scheduler/switches": scheduler["switches"],
        "scheduler/last_switch_reason": scheduler["last_switch_reason"],
        "loss/total": totals.loss,
        "loss/policy": totals.policy_loss,
        "loss/kl": totals.kl,
        "loss/clip_fraction": totals.clip_fraction,
        "loss/approx_kl": totals.approx_kl,
        "loss/excluded_truncated": totals.excluded_truncated,
        "optim/grad_norm": update.grad_norm,
        "optim/lr": update.lr,
        "optim/steps": trainer.optimizer_steps,
        "tokens/clue": games.clue_tokens,
        "tokens/vote": games.vote_tokens,
        "tokens/truncated_completions": games.truncated,
        "tokens/trained": totals.trained_tokens,
        "tokens/generated": games.generated_tokens,
        "speed/step_s": seconds,
        "speed/rollout_s": rollout_seconds,
        "speed/tokens_per_s": games.generated_tokens / seconds,
        "data/epoch": trainer.stream.epoch,
        "data/skipped": skipped,
    }


def _differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two nested records."""
    differences = {}
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            differences |= _differences(old, new, prefix=f"{name}.")
        elif _jsonable(old) != _jsonable(new):
            differences[name] = (old, new)
    return differences


def _read_run_record(path: Path) -> dict[str, Any]:
    """The saved run record a resumed run must match; ConfigError when it is missing or broken."""
    if not path.is_file():
        raise ConfigError(
            f"--resume: {path.parent} has checkpoints but no {path.name}, which records the run's model, data and "
            "recipe; it was not written by `vzero train` (or was deleted), so the run cannot be checked and resumed"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"--resume: {path} is not valid JSON ({error.msg}); it cannot be resumed") from error


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested run record as flat scalar hyperparameters, for trackers."""
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat |= _flat(value, prefix=f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, int | float | str | bool) else str(value)
    return flat


def run_training(options: TrainOptions, *, console: Console | None = None) -> Path:
    """The whole lifecycle; returns the run folder."""
    trainer = SPOTrainer(options, console=console)
    try:
        trainer.setup()
        trainer.train()
    finally:
        trainer.cleanup()
    return options.out
