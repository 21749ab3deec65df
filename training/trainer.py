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

import json
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
    MASTER_WEIGHTS,
    RUN_FILE,
    TrainerState,
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
)
from training.checkpoint import save_checkpoint as write_checkpoint
from training.game import Game, Role, make_game
from training.iteration import StepOutcome, advance
from training.metrics import MetricsLog, StepLog
from training.model import check_model_source, load_model_and_processor, suppressed_token_ids
from training.pairs import PairStream
from training.processor_files import processor_folder
from training.recipe import Recipe
from training.rewards import RoleBaselines
from training.rollout import ModelSampler, SamplingConfig
from training.scheduler import Stage, StageScheduler
from training.selfplay import Trajectory, play_games
from training.transcripts import GAMES_FILE, game_record
from training.update import LossTotals, accumulate_gradients

RESUMABLE_OVERRIDES = ("max_steps", "save_every", "keep_checkpoints", "trackers", "cpu_threads", "log_games")


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
        """Load the policy, reference, optimiser, schedules and, when resuming, the saved state."""
        from transformers import get_cosine_schedule_with_warmup
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self._start_accelerator()
        policy = self._load_models()
        self.options.out.mkdir(parents=True, exist_ok=True)
        optim = self.recipe.optim
        optimizer = torch.optim.AdamW(
            policy.parameters(), lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay
        )
        self.lr_scheduler = get_cosine_schedule_with_warmup(optimizer, self.recipe.warmup_steps, self.recipe.max_steps)
        self.model, self.optimizer = self.accelerator.prepare(policy, optimizer)
        rollout = self.recipe.rollout
        self.sampling = SamplingConfig(
            max_new_tokens=rollout.max_new_tokens,
            temperature=rollout.temperature,
            suppressed=tuple(suppressed_token_ids(policy, self.processor)),
        )
        self.sampler = ModelSampler(self.accelerator.unwrap_model(self.model), self.processor, self.sampling)
        self.stage_scheduler = StageScheduler(self.recipe.scheduler)
        self.baselines = RoleBaselines(self.recipe.reward.baseline_decay)
        self.stream = PairStream(self.dataset, seed=self.recipe.seed)
        self.metrics = MetricsLog(
            self.options.out,
            accelerator=self.accelerator,
            console=self.console,
            is_main=self.accelerator.is_main_process,
        )
        self.games_log = StepLog(
            self.options.out / GAMES_FILE, enabled=self.accelerator.is_main_process and self.recipe.log_games != 0
        )
        if self.resume_from is not None:
            self._load_state(self.resume_from)
        elif self.accelerator.is_main_process:
            (self.options.out / RUN_FILE).write_text(json.dumps(self.run_record, indent=2) + "\n")
        self.metrics.truncate_after(self.step)
        self.games_log.truncate_after(self.step)
        self.accelerator.init_trackers("vision-zero", config=_flat(self.run_record))

    def _start_accelerator(self) -> None:
        """Devices, mixed precision (bf16 on GPUs) and trackers; processes share the step's games evenly."""
        from accelerate import Accelerator
        from accelerate.tracking import get_available_trackers

        self.on_gpu = torch.cuda.is_available()
        if not self.on_gpu and self.recipe.cpu_threads:
            torch.set_num_threads(self.recipe.cpu_threads)
        self.use_bf16 = self.on_gpu and self.recipe.precision == "bf16"
        self.accelerator = Accelerator(
            mixed_precision="bf16" if self.use_bf16 else "no",
            log_with="all" if self.recipe.trackers == "all" and get_available_trackers() else None,
            project_dir=str(self.options.out),
        )
        if self.recipe.rollout.games_per_step % self.accelerator.num_processes:
            raise ConfigError(
                f"rollout games_per_step ({self.recipe.rollout.games_per_step}) must be a multiple of the "
                f"{self.accelerator.num_processes} processes"
            )

    def _load_models(self) -> torch.nn.Module:
        """The policy (from the checkpoint when resuming) and the frozen reference (always the starting model)."""
        self.processor_files = processor_folder(self.resume_from or self.options.model)
        loaded = load_model_and_processor(
            self.resume_from or self.options.model, max_pixels=self.recipe.rollout.max_pixels
        )
        self.processor = loaded.processor
        if self.on_gpu and self.recipe.gradient_checkpointing:
            loaded.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.reference = None
        if self.recipe.loss.kl_coef > 0:
            reference_dtype = torch.bfloat16 if self.use_bf16 else torch.float32  # frozen: no master weights needed
            reference = load_model_and_processor(self.options.model, dtype=reference_dtype).model
            self.reference = reference.requires_grad_(False).eval().to(self.accelerator.device)
        return loaded.model

    def _load_state(self, checkpoint: Path) -> None:
        state, torch_state = load_trainer_state(checkpoint)
        if MASTER_WEIGHTS in torch_state:  # the safetensors hold rounded (bf16) weights; training goes on from these
            self.accelerator.unwrap_model(self.model).load_state_dict(torch_state[MASTER_WEIGHTS])
        self.optimizer.load_state_dict(torch_state["optimizer"])
        self.lr_scheduler.load_state_dict(torch_state["lr_scheduler"])
        # The saved learning rates follow the saved run's schedule; recompute them on this run's (its max_steps).
        schedule = self.lr_scheduler
        for group, base_lr, factor in zip(
            self.optimizer.param_groups, schedule.base_lrs, schedule.lr_lambdas, strict=True
        ):
            group["lr"] = base_lr * factor(schedule.last_epoch)
        self.stage_scheduler.load_state_dict(state.scheduler)
        self.baselines.load_state_dict(state.baselines)
        self.stream.position = state.data_position
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
        torch.manual_seed(_step_seed(self.recipe.seed, self.step, self.accelerator.process_index))
        games, skipped = self._next_games()
        self.model.eval()
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
        outcome = StepOutcome.combine(self._gather([StepOutcome.of(trajectory)]))
        self._log_games(self.step + 1, trajectory)
        update = self._update(trajectory)
        advance(stage, outcome, self.stage_scheduler, self.baselines)
        seconds = time.perf_counter() - started
        return _step_metrics(stage, trajectory, outcome, update, self, rollout_seconds, seconds, skipped)

    def _gather(self, items: list[Any]) -> list[Any]:
        """Every process's `items`, concatenated in process order, on every process."""
        from accelerate.utils import gather_object

        return gather_object(items) if self.accelerator.num_processes > 1 else items

    def _log_games(self, step: int, trajectory: Trajectory) -> None:
        """Append the step's first `log_games` games (all by default) to `games.jsonl`."""
        limit = self.recipe.log_games
        if limit == 0:
            return
        played = trajectory.games if limit is None else trajectory.games[:limit]
        records = self._gather(
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
        share = self.recipe.rollout.games_per_step // self.accelerator.num_processes
        first = self.accelerator.process_index * share
        return games[first : first + share], skipped

    def _update(self, trajectory: Trajectory) -> UpdateStats:
        """One optimiser step on the trajectory's completions, accumulating gradients over micro-batches."""
        self.model.train()
        totals = accumulate_gradients(
            self.model,
            self.reference,
            trajectory.chunks,
            sampling=self.sampling,
            loss_config=self.recipe.loss,
            micro_batch_size=self.recipe.rollout.micro_batch_size,
            backward=self.accelerator.backward,
        )
        grad_norm = float("nan")
        if self.recipe.optim.max_grad_norm > 0:
            grad_norm = float(
                self.accelerator.clip_grad_norm_(self.model.parameters(), self.recipe.optim.max_grad_norm)
            )
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return UpdateStats(totals=totals, grad_norm=grad_norm, lr=lr)

    def save_checkpoint(self, *, step: int) -> Path | None:
        """Write `OUT/checkpoints/step-NNNNNN` (model folder + trainer state); returns it on the main process."""
        self.accelerator.wait_for_everyone()
        path = None
        if self.accelerator.is_main_process:
            state = TrainerState(
                step=step,
                data_position=self.stream.position,
                scheduler=self.stage_scheduler.state_dict(),
                baselines=self.baselines.state_dict(),
                recipe=self.recipe.to_dict(),
            )
            path = write_checkpoint(
                self.options.out,
                model=self.accelerator.unwrap_model(self.model),
                processor_files=self.processor_files,
                optimizer=self.optimizer,
                lr_scheduler=self.lr_scheduler,
                state=state,
                keep=self.recipe.keep_checkpoints,
            )
            self._say(f"saved {path}")
        self.accelerator.wait_for_everyone()
        return path

    def cleanup(self) -> None:
        """Flush trackers and release the models."""
        if hasattr(self, "accelerator"):
            self.accelerator.end_training()
        self.model = self.reference = self.sampler = None

    def _say(self, message: str) -> None:
        if self.console is not None:
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
