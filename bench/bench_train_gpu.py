"""Benchmark on a GPU: Iterative-SPO rollouts of a Qwen2.5-VL-7B-sized model and full training steps of a 3B-sized
one, randomly initialised from the real architectures' dimensions (no weights needed), in bf16.

1. Rollout: the same games played the trainer's way (every clue turn of every game in one `generate`, all votes
   in one more, G samples of a vote sharing one prefill) and the release's way (one game at a time, one player per
   `generate`, the judge's G votes in one call that pays the prefill G times); GPU-seconds per game of each and
   their ratio (goal: the trainer's way >= 10x cheaper), generated tokens/s, peak GPU memory.
2. Training step: one step of the trainer's update on the rollout's completions: policy log-probs, reference
   log-probs, backward, optimizer, each timed; peak GPU memory.

Random weights rarely stop early, so most turns run to `--max-new-tokens`: the costs are those of full-length
turns, the same for both ways. One GPU, one process. `--smoke` runs the same code on the CPU with the tiny model
in seconds (the tests run it). Pairs come from a dataset folder (`datasets` installed) or from a folder exported
with `vzero export --format vision-zero` (PNG files; no `datasets` needed on the GPU machine).

    python bench/bench_train_gpu.py --pairs exported/ [--games 8] [--max-new-tokens 128]
    python bench/bench_train_gpu.py --smoke --pairs demo_out/chart
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchkit

QWEN25_VL = {
    "7b": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
           "num_key_value_heads": 4, "vocab_size": 152064},
    "3b": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
           "num_key_value_heads": 2, "vocab_size": 151936},
}  # fmt: skip
QWEN25_VL_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16}


@dataclass
class Timer:
    """Seconds and calls per named phase, synchronising the GPU before reading the clock."""

    sync: Callable[[], None]
    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.sync()
            started = time.perf_counter()
            result = function(*args, **kwargs)
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.calls[name] = self.calls.get(name, 0) + 1
            return result

        return wrapped


def load_records(folder: Path, count: int) -> list[dict[str, Any]]:
    """`count` pair records (decoded images) from a dataset folder or an exported vision-zero folder."""
    from PIL import Image

    if (folder / "data").is_dir():
        from datagen.loading import load_pairs

        pairs = load_pairs(folder)
        return [pairs[index % len(pairs)] for index in range(count)]
    logs = sorted(folder.glob("*.json"))
    if not logs:
        raise SystemExit(f"{folder}: neither a dataset folder (data/*.parquet) nor an exported one (*.json)")
    records = []
    for index in range(count):
        log = json.loads(logs[index % len(logs)].read_text())
        records.append(
            {
                "id": log["id"],
                "domain": log["domain"],
                "description": log["description"],
                "civilian": Image.open(folder / log["original_image"]).convert("RGB"),
                "spy": Image.open(folder / log["modified_image"]).convert("RGB"),
            }
        )
    return records


def random_model(tiny: Path, size: str, device: str, max_pixels: int) -> tuple[Any, Any]:
    """A Qwen2.5-VL with the `size` model's dimensions and random bf16 weights, and the tiny model's processor."""
    import torch
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    from training.model import load_processor

    config = AutoConfig.from_pretrained(tiny)
    head_dim = QWEN25_VL[size]["hidden_size"] // QWEN25_VL[size]["num_attention_heads"]
    for key, value in {**QWEN25_VL[size], "head_dim": head_dim}.items():
        setattr(config.text_config, key, value)
    config.text_config.rope_parameters = {**config.text_config.rope_parameters, "mrope_section": [16, 24, 24]}
    for key, value in {**QWEN25_VL_VISION, "out_hidden_size": QWEN25_VL[size]["hidden_size"]}.items():
        setattr(config.vision_config, key, value)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return model.eval(), load_processor(tiny, max_pixels=max_pixels)


def measure(args: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    from training.config import GameConfig, LossConfig, RewardConfig
    from training.families import Prefill
    from training.game import make_game
    from training.model import load_model_and_processor, suppressed_token_ids
    from training.rewards import RoleBaselines
    from training.rollout import ModelSampler, SamplingConfig, token_logprobs
    from training.scheduler import Stage
    from training.selfplay import play_games
    from training.update import accumulate_gradients

    torch.manual_seed(0)
    device = "cpu" if args.smoke else "cuda"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if args.smoke:
        torch.set_num_threads(1)
        loaded = load_model_and_processor(args.tiny, max_pixels=28 * 28 * 16)
        rollout_model, processor = loaded.model.eval(), loaded.processor
    else:
        rollout_model, processor = random_model(args.tiny, "7b", device, args.max_pixels)
    records = load_records(args.pairs, args.games)
    games = [make_game(record, GameConfig(), np.random.default_rng([0, i])) for i, record in enumerate(records)]
    sampling = SamplingConfig(args.max_new_tokens, 0.8, tuple(suppressed_token_ids(rollout_model, processor)))
    dtype = torch.float32 if args.smoke else torch.bfloat16
    results: dict[str, Any] = {"games": len(games), "device": device}

    def rollout(batches: list[list[Any]], voters: str, share_prefill: bool) -> dict[str, Any]:
        sampler = ModelSampler(
            rollout_model,
            processor,
            sampling,
            compute_dtype=dtype,
            prune_every=args.prune_every if share_prefill else 0,
        )
        if not share_prefill:  # the release repeats each prompt G times and keeps ended rows
            sampler.family = dataclasses.replace(sampler.family, prefill=Prefill.NONE)
        timer = Timer(sync)
        sampler._generate = timer.timed("generate", sampler._generate)
        tokens = 0
        reset_peak()
        with benchkit.Stopwatch(children=False) as clock:
            for batch in batches:
                trajectory = play_games(sampler, batch, stage=Stage.CLUE, num_samples=args.num_samples,
                                        game_config=GameConfig(voters=voters), reward_config=RewardConfig(),
                                        baselines=RoleBaselines(0.95))  # fmt: skip
                tokens += trajectory.stats.generated_tokens
            sync()
        return {"wall_s": clock.wall_s, "tokens": tokens, "peak_gib": peak_gib(), "calls": timer.calls["generate"]}

    def reset_peak() -> None:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def peak_gib() -> float:
        return torch.cuda.max_memory_allocated() / 1024**3 if device == "cuda" else 0.0

    batched = rollout([games], "civilians", True)
    release = rollout([[game] for game in games], "judge", False)
    for name, row in (("batched", batched), ("release", release)):
        results[name] = row
        results[name]["gpu_s_per_game"] = row["wall_s"] / len(games)
    results["ratio"] = release["wall_s"] / batched["wall_s"]

    # A full training step on a 3B-sized model (the smoke run keeps the tiny one) on its own rollout's completions.
    if not args.smoke:
        del rollout_model
        torch.cuda.empty_cache()
        policy, processor = random_model(args.tiny, "3b", device, args.max_pixels)
        policy = policy.float()
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        reference, _ = random_model(args.tiny, "3b", device, args.max_pixels)
        reference.load_state_dict(policy.state_dict())
    else:
        policy = rollout_model
        reference = load_model_and_processor(args.tiny, max_pixels=28 * 28 * 16).model.eval()
    step_sampler = ModelSampler(policy, processor, sampling, compute_dtype=dtype)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    )
    with autocast:
        trajectory = play_games(step_sampler, games, stage=Stage.DECISION, num_samples=args.num_samples,
                                game_config=GameConfig(), reward_config=RewardConfig(),
                                baselines=RoleBaselines(0.95))  # fmt: skip
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-6)
    timer = Timer(sync)

    def policy_logprobs(batch: Any) -> Any:
        with autocast:
            return token_logprobs(policy, batch, sampling)

    def reference_logprobs(batch: Any) -> Any:
        with autocast:
            return token_logprobs(reference, batch, sampling)

    policy.train()
    reset_peak()
    accumulate_gradients(
        timer.timed("policy log-probs", policy_logprobs),
        timer.timed("reference log-probs", reference_logprobs),
        trajectory.chunks,
        loss_config=LossConfig(),
        micro_batch_size=args.micro_batch_size,
        backward=timer.timed("backward", lambda loss, last: loss.backward()),
    )
    timer.timed("optimizer", optimizer.step)()
    completions = sum(len(chunk) for chunk, _ in trajectory.chunks)
    results["step"] = {**timer.seconds, "completions": completions, "peak_gib": peak_gib()}
    return results


def markdown(result: dict[str, Any], load: dict[str, Any]) -> str:
    batched, release, step = result["batched"], result["release"], result["step"]
    model = "tiny Qwen2.5-VL on the CPU (smoke run)" if result["device"] == "cpu" else (
        "random Qwen2.5-VL-7B dimensions for rollouts, 3B dimensions for the training step, bf16, one GPU")  # fmt: skip
    lines = [
        f"{model}; {result['games']} games of 4 civilians + spy, 2 rounds, G = {result['num_samples']}, up to "
        f"{result['max_new_tokens']} new tokens per turn; {benchkit.machine()}; load average {load}.",
        "",
        "| rollout of the same games | GPU-s per game | generated tokens/s | generate calls | peak GPU memory |",
        "|---|---:|---:|---:|---:|",
        f"| trainer: turns batched across games, votes in one call, shared prefill | {batched['gpu_s_per_game']:.2f} | "
        f"{batched['tokens'] / batched['wall_s']:.0f} | {batched['calls']} | {batched['peak_gib']:.1f} GiB |",
        f"| release: one game at a time, one player per call, judge votes | {release['gpu_s_per_game']:.2f} | "
        f"{release['tokens'] / release['wall_s']:.0f} | {release['calls']} | {release['peak_gib']:.1f} GiB |",
        f"| **ratio (goal >= 10x)** | **{result['ratio']:.1f}x** | | | |",
        "",
        f"| training step phase ({step['completions']} vote completions) | seconds |",
        "|---|---:|",
        *(
            f"| {name} | {step[name]:.2f} |"
            for name in ("policy log-probs", "reference log-probs", "backward", "optimizer")
        ),  # fmt: skip
        f"| peak GPU memory | {step['peak_gib']:.1f} GiB |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = benchkit.argument_parser(__doc__)
    parser.add_argument("--pairs", type=Path, required=True, help="A dataset folder or an exported vision-zero one.")
    parser.add_argument("--tiny", type=Path, help="Tiny model folder for the tokenizer (made if absent).")
    parser.add_argument("--games", type=int, default=8)
    parser.add_argument("--num-samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--micro-batch-size", type=int, default=4)
    parser.add_argument("--prune-every", type=int, default=64, help="The trainer's way: ended rows leave every N.")
    parser.add_argument("--max-pixels", type=int, default=28 * 28 * 256, help="Pixels per image (256 visual tokens).")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny model: checks the script, measures nothing.")
    parser.add_argument("--results", type=Path, default=benchkit.RESULTS, help="Folder for train_gpu.{md,json}.")
    args = parser.parse_args()
    if args.tiny is None or not (args.tiny / "config.json").is_file():
        from training.tiny_model import make_tiny_model

        args.tiny = make_tiny_model(args.tiny or Path(tempfile.mkdtemp()) / "tiny")
    load = benchkit.load_average()
    result = {**measure(args), "num_samples": args.num_samples, "max_new_tokens": args.max_new_tokens}
    table = markdown(result, {"before": load, "after": benchkit.load_average()})
    print(table)
    name = "train_gpu_smoke" if args.smoke else "train_gpu"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{name}.md").write_text(table)
    (args.results / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
