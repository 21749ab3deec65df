"""Memory plan: GPU memory per process for the paper's recipe on 3B/7B/14B models, by configuration.

Arithmetic from the models' published configs, not a measurement (no GPU was available where this was written):
parameters counted layer by layer; fp32 master weights, gradients and two AdamW moments (16 bytes per trained
parameter) divided by the processes under fsdp2; the frozen reference in bf16 (2 bytes, divided under fsdp2, none
under LoRA); during a rollout the whole policy gathered in bf16 plus the KV cache of the largest call (the votes
of one game per GPU: 4 civilians x G = 8 rows, prompt of 1024 visual + 512 text tokens, 1024 new tokens); during
the update, activations of one micro-batch of 4 completions with gradient checkpointing (each layer's input
kept, one layer's intermediates live, float32 logits over the 1024 completion tokens, twice for the log-softmax).
Peak = the larger phase. Prints the table and writes `bench/results/memory_plan.{md,json}`.

    python bench/memory_plan.py
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
GIB = 1024**3
GPUS_PER_NODE = 8
ROWS, PROMPT, NEW, MICRO_BATCH = 4 * 8, 1024 + 512, 1024, 4


@dataclass(frozen=True)
class Model:
    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool
    vision_params: int
    """Vision encoder and projector parameters."""

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params(self) -> int:
        kv = self.kv_heads * self.head_dim
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv + self.hidden + 2 * kv  # q, o, k, v + biases
        layer = attention + 3 * self.hidden * self.intermediate + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * layer + embeddings + self.hidden + self.vision_params


def qwen_vision(out_hidden: int) -> int:
    """Qwen2.5-VL's vision tower (32 blocks of width 1280, gated MLP 3420) and its 2x2 patch merger."""
    block = 4 * 1280 * 1280 + 3 * 1280 * 3420 + 4 * 1280
    return 32 * block + 3 * 14 * 14 * 2 * 1280 + 5120 * 5120 + 5120 * out_hidden


def intern_vision(out_hidden: int) -> int:
    """InternViT-300M (24 blocks of width 1024, MLP 4096) and InternVL's pixel-shuffle MLP projector."""
    return 24 * (4 * 1024 * 1024 + 2 * 1024 * 4096) + 4096 * out_hidden + out_hidden * out_hidden


MODELS = [
    Model("Qwen2.5-VL-3B", 2048, 11008, 36, 16, 2, 151936, True, qwen_vision(2048)),
    Model("Qwen2.5-VL-7B", 3584, 18944, 28, 28, 4, 152064, False, qwen_vision(3584)),
    Model("InternVL3-14B", 5120, 13824, 48, 40, 8, 151674, False, intern_vision(5120)),
]


def plan(model: Model, config: str, gpu_gib: int) -> dict:
    n = model.params
    shards = GPUS_PER_NODE if config == "fsdp2" else 1
    lora = config == "ddp + LoRA"
    trained = 0.01 * n if lora else n  # rank-64 adapters on every projection: ~1% of the parameters
    states = 16 * trained / shards  # fp32 master + grad + 2 AdamW moments
    frozen_base = 2 * n if lora else 0  # LoRA keeps the base in bf16, which is also the reference
    reference = 0 if lora else 2 * n / shards
    rollout_weights = 0 if lora else 2 * n  # the gathered bf16 copy (ddp: autocast casts fp32 per matmul)
    kv = ROWS * (PROMPT + NEW) * model.layers * 2 * model.kv_heads * model.head_dim * 2
    per_token = model.layers * model.hidden * 2 + 16 * model.hidden * 2 + 2 * model.intermediate * 2
    activations = MICRO_BATCH * (PROMPT + NEW) * per_token + 2 * MICRO_BATCH * NEW * model.vocab * 4
    resident = states + frozen_base + reference
    peak = max(resident + rollout_weights + kv, resident + activations)
    return {
        "model": model.name,
        "params_b": n / 1e9,
        "gpu_gib": gpu_gib,
        "config": config,
        "states_gib": (states + frozen_base) / GIB,
        "reference_gib": reference / GIB,
        "rollout_weights_gib": rollout_weights / GIB,
        "kv_cache_gib": kv / GIB,
        "activations_gib": activations / GIB,
        "peak_gib": peak / GIB,
        "fits": peak <= 0.9 * gpu_gib * GIB,
    }


def main() -> None:
    rows = [
        plan(model, config, gpu) for model in MODELS for gpu in (80, 141) for config in ("ddp", "fsdp2", "ddp + LoRA")
    ]
    lines = [
        f"Per GPU, {GPUS_PER_NODE} GPUs per node; arithmetic, not measured (see bench/memory_plan.py).",
        "",
        "| model | GPU | config | weights + grads + AdamW | reference | rollout weights | KV cache (32 rows) "
        "| activations (4 rows) | peak | fits (90%) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} ({row['params_b']:.2f}B) | {row['gpu_gib']} GB | {row['config']} | "
            f"{row['states_gib']:.1f} | {row['reference_gib']:.1f} | {row['rollout_weights_gib']:.1f} | "
            f"{row['kv_cache_gib']:.1f} | {row['activations_gib']:.1f} | {row['peak_gib']:.1f} | "
            f"{'yes' if row['fits'] else 'no'} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory_plan.md").write_text(table)
    (RESULTS / "memory_plan.json").write_text(
        json.dumps({"models": [asdict(m) for m in MODELS], "plans": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
