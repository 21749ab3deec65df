"""Benchmark: Iterative-SPO training steps of the tiny Qwen2.5-VL on a CPU, and batched vs one-game-at-a-time rollouts.

1. Training: `SPOTrainer` steps with the paper's game shape (4 civilians, 2 rounds) at tiny sizes: steps/s,
   generated tokens/s, CPU-s per step, peak RSS.
2. Rollouts: the same games played batched (one `generate` per turn for all games, the G votes of a prompt
   sharing one prefill, as `vzero train` does) and one game at a time (one `generate` per clue, each of the G
   votes paying its own prefill, as the release does), with the same model and settings.

Each configuration runs in its own subprocess on one torch thread, so that CPU time and peak RSS are its own.
Prints a table and writes `bench/results/train.{md,json}`. The tiny model measures the orchestration, not a 7B
model's arithmetic: on a GPU the batched rollout's gain is larger, since a turn of B games costs about one.

    python bench/bench_train.py [--steps 4] [--games 8]
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

import benchkit

SETTINGS = [
    "game.civilians=4",
    "game.rounds=2",
    "rollout.num_samples=4",
    "rollout.max_new_tokens=32",
    "scheduler.mode=fixed:1",
]


def measure_training(data: Path, model: Path, steps: int, games: int) -> dict:
    import torch

    from training.recipe import load_recipe
    from training.trainer import SPOTrainer, TrainOptions

    torch.set_num_threads(1)
    recipe = load_recipe(
        "tiny-cpu", [*SETTINGS, f"max_steps={steps}", f"save_every={steps}", f"rollout.games_per_step={games}"]
    )
    with tempfile.TemporaryDirectory() as out:
        trainer = SPOTrainer(TrainOptions(data=str(data), model=str(model), out=Path(out), recipe=recipe))
        trainer.setup()
        with benchkit.Stopwatch(children=False) as clock:
            trainer.train()
        metrics = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
        trainer.cleanup()
    generated = sum(m["tokens/generated"] for m in metrics)
    return {"steps": steps, **clock.as_dict(), "tokens": generated}


def measure_rollout(data: Path, model: Path, games: int, batched: bool) -> dict:
    import numpy as np
    import torch

    from datagen.loading import load_pairs
    from training.families import Prefill
    from training.game import make_game
    from training.model import load_model_and_processor, suppressed_token_ids
    from training.recipe import load_recipe
    from training.rewards import RoleBaselines
    from training.rollout import SamplingConfig
    from training.scheduler import Stage
    from training.selfplay import play_games

    TimedSampler = _timed_sampler_class()
    torch.set_num_threads(1)
    recipe = load_recipe("tiny-cpu", SETTINGS)
    loaded = load_model_and_processor(model, max_pixels=recipe.rollout.max_pixels)
    suppressed = suppressed_token_ids(loaded.model, loaded.processor)
    sampling = SamplingConfig(recipe.rollout.max_new_tokens, recipe.rollout.temperature, tuple(suppressed))
    # The trainer's way: ended rows leave the batch (rollout.prune_every); the release's way keeps them.
    prune_every = recipe.rollout.prune_every if batched else 0
    sampler = TimedSampler(loaded.model.eval(), loaded.processor, sampling, prune_every=prune_every)
    if not batched:
        sampler.family = dataclasses.replace(sampler.family, prefill=Prefill.NONE)
    pairs = load_pairs(data)
    played = [make_game(pairs[i % len(pairs)], recipe.game, np.random.default_rng([0, i])) for i in range(games)]
    batches = [played] if batched else [[game] for game in played]
    torch.manual_seed(0)
    tokens, vote_seconds = 0, 0.0
    with benchkit.Stopwatch(children=False) as clock:
        for batch in batches:
            sampler.seconds.clear()
            trajectory = play_games(
                sampler,
                batch,
                stage=Stage.CLUE,
                num_samples=recipe.rollout.num_samples,
                game_config=recipe.game,
                reward_config=recipe.reward,
                baselines=RoleBaselines(recipe.reward.baseline_decay),
            )
            tokens += trajectory.stats.generated_tokens
            vote_seconds += sampler.seconds[-1]  # the votes are each game batch's last `generate`
    return {
        "games": games,
        "wall_s": clock.wall_s,
        "clue_s": clock.wall_s - vote_seconds,
        "vote_s": vote_seconds,
        "cpu_s": clock.cpu_s,
        "peak_rss_mib": clock.peak_rss_mib,
        "tokens": tokens,
    }


def _timed_sampler_class():
    from training.rollout import ModelSampler

    class TimedSampler(ModelSampler):
        """A sampler that records the wall time of each `sample` call. Without prefill sharing (the family's
        `prefill` set to NONE) it samples G votes the release's way: `num_return_sequences` repeats the prompt, so
        each sample pays its prefill."""

        seconds: list[float] = []

        def sample(self, prompts, *, num_samples=1):
            started = time.perf_counter()
            completions = super().sample(prompts, num_samples=num_samples)
            self.seconds.append(time.perf_counter() - started)
            return completions

    return TimedSampler


def prepare(scratch: Path) -> tuple[Path, Path]:
    """A small chart dataset and the tiny model."""
    from chart_edit.domain import DOMAIN, ChartConfig
    from datagen.runner import RunOptions, run
    from training.tiny_model import make_tiny_model

    data = scratch / "charts"
    run(DOMAIN, ChartConfig(width=256, height=192), RunOptions(out=data, num=16, seed=0, workers=1, shard_size=16))
    return data, make_tiny_model(scratch / "tiny")


def markdown(train: dict, batched: dict, sequential: dict, load: dict) -> str:
    speedup = sequential["wall_s"] / batched["wall_s"]
    return (
        "\n".join(
            [
                "Tiny Qwen2.5-VL (random weights + format warm-up, ~230k parameters), games of 4 civilians + spy, "
                "2 rounds, G = 4 votes per civilian, up to 32 new tokens per turn; one torch thread; "
                f"{benchkit.machine()}. Load average before / after: {load['before']} / {load['after']}.",
                "",
                "| training | steps/s | generated tokens/s | CPU-s per step | peak RSS |",
                "|---|---:|---:|---:|---:|",
                f"| `SPOTrainer`, {train['games']} games per step, {train['steps']} steps | "
                f"{train['steps'] / train['wall_s']:.2f} | {train['tokens'] / train['wall_s']:.0f} | "
                f"{train['cpu_s'] / train['steps']:.2f} | {train['peak_rss_mib']:.0f} MiB |",
                "",
                "| rollout of the same games | games/s | generated tokens/s | CPU-s per game | peak RSS |",
                "|---|---:|---:|---:|---:|",
                *(
                    f"| {name} | {row['games'] / row['wall_s']:.2f} | {row['tokens'] / row['wall_s']:.0f} | "
                    f"{row['cpu_s'] / row['games']:.2f} | {row['peak_rss_mib']:.0f} MiB |"
                    for name, row in (
                        ("batched: one `generate` per turn for all games", batched),
                        ("one game at a time (the release's way)", sequential),
                    )
                ),
                "",
                "| rollout phase | batched | one game at a time | speed-up |",
                "|---|---:|---:|---:|",
                f"| clue turns (one `generate` per turn vs per clue) | {batched['clue_s']:.1f} s | "
                f"{sequential['clue_s']:.1f} s | {sequential['clue_s'] / batched['clue_s']:.1f}× |",
                f"| votes (all games in one call, shared prefill, vs one call per game) | {batched['vote_s']:.1f} s | "
                f"{sequential['vote_s']:.1f} s | {sequential['vote_s'] / batched['vote_s']:.1f}× |",
                f"| whole rollout | {batched['wall_s']:.1f} s | {sequential['wall_s']:.1f} s | **{speedup:.1f}×** |",
            ]
        )
        + "\n"
    )


def main() -> None:
    parser = benchkit.argument_parser(__doc__)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--games", type=int, default=8)
    args = parser.parse_args()
    if args.measure:
        mode, data, model = args.measure
        if mode == "train":
            result = measure_training(Path(data), Path(model), args.steps, args.games)
        else:
            result = measure_rollout(Path(data), Path(model), args.games, batched=mode == "batched")
        benchkit.reply(result)
        return

    load = {"before": benchkit.load_average()}
    with tempfile.TemporaryDirectory() as scratch:
        data, model = prepare(Path(scratch))
        common = [str(data), str(model), "--steps", str(args.steps), "--games", str(args.games)]
        train = {**benchkit.in_subprocess(__file__, "train", *common), "games": args.games}
        batched = benchkit.in_subprocess(__file__, "batched", *common)
        sequential = benchkit.in_subprocess(__file__, "sequential", *common)
    load["after"] = benchkit.load_average()

    rows = [
        (
            f"training ({args.games} games/step)",
            f"{train['steps'] / train['wall_s']:.2f} steps",
            f"{train['tokens'] / train['wall_s']:.0f}",
            f"{train['cpu_s'] / train['steps']:.2f}",
            f"{train['peak_rss_mib']:.0f}",
        )
    ]
    for name, row in (("rollout, batched", batched), ("rollout, one game at a time", sequential)):
        rows.append(
            (
                name,
                f"{row['games'] / row['wall_s']:.2f} games",
                f"{row['tokens'] / row['wall_s']:.0f}",
                f"{row['cpu_s'] / row['games']:.2f}",
                f"{row['peak_rss_mib']:.0f}",
            )
        )
    speedup = (
        f"batched rollout speed-up: {sequential['wall_s'] / batched['wall_s']:.1f}x (clue turns "
        f"{sequential['clue_s'] / batched['clue_s']:.1f}x, votes {sequential['vote_s'] / batched['vote_s']:.1f}x); "
        f"load average {load}"
    )
    benchkit.show_table(
        "Iterative-SPO on the tiny model, CPU, 1 thread",
        ("configuration", "per s", "tokens/s", "CPU-s per item", "peak RSS MiB"),
        rows,
        left=("configuration",),
        notes=[speedup],
    )
    record = {"settings": SETTINGS, "load_average": load, "train": train, "batched": batched, "sequential": sequential}
    benchkit.write_results("train", markdown(train, batched, sequential, load), record)


if __name__ == "__main__":
    main()
