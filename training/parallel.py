"""How the policy and the frozen reference are spread over the training processes, behind one small interface.

Strategies (the recipe's `parallel.strategy`):
- `none`: one process holds everything.
- `ddp`: every process holds the whole model; gradients are averaged once per step (at the last micro-batch).
- `fsdp2`: PyTorch's `fully_shard` on every transformer block (the classes a model lists in `_no_split_modules`)
  and then the root, as torchtune's distributed recipes do: each process keeps 1/N of the fp32 master weights
  and optimizer state, gathers a block's weights (bf16 on GPUs) just before using it and frees them after;
  gradients are reduce-scattered in fp32 once per step. The reference model is sharded the same way, in bf16
  on GPUs and without optimizer state.

Generation from sharded weights: for a rollout phase every block is gathered once, on first use, and kept until
the phase ends (`rollout()`); then all are freed again. A decode step therefore costs no communication, and
processes may generate different numbers of tokens. The memory cost is one full copy of the weights in the
compute dtype (bf16: 2 bytes per parameter, e.g. 16.6 GB for Qwen2.5-VL-7B) for the length of the rollout,
instead of a second model kept in sync after every optimizer step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from datagen.errors import ConfigError
from training.distributed import Processes

STRATEGIES = ("auto", "none", "ddp", "fsdp2")


def resolve_strategy(strategy: str, processes: Processes) -> str:
    """The strategy to run: `auto` is `ddp` with several processes and `none` with one.

    Raises:
        ConfigError: `none` with several processes (each would train alone), or `ddp`/`fsdp2` in one process.
    """
    if strategy == "auto":
        return "ddp" if processes.distributed else "none"
    if strategy == "none" and processes.distributed:
        raise ConfigError(
            f"parallel strategy 'none' with {processes.world_size} processes: each would train its own copy; "
            "use ddp or fsdp2"
        )
    if strategy in ("ddp", "fsdp2") and not processes.distributed:
        raise ConfigError(
            f"parallel strategy {strategy!r} needs several processes: launch with "
            f"`torchrun --nproc_per_node N $(which vzero) train ...`, or set parallel.strategy=none for one"
        )
    return strategy


class Parallelism:
    """The chosen strategy applied to a policy and a reference, and the operations that differ between strategies."""

    def __init__(self, strategy: str, processes: Processes, *, bf16: bool) -> None:
        self.strategy = resolve_strategy(strategy, processes)
        self.processes = processes
        self.bf16 = bf16

    def wrap_policy(self, model: torch.nn.Module) -> torch.nn.Module:
        """The policy on this process's device, spread by the strategy (call before creating the optimizer)."""
        model = model.to(self.processes.device)
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.processes.local_rank] if self.processes.device.type == "cuda" else None
            return DistributedDataParallel(model, device_ids=device_ids)
        if self.strategy == "fsdp2":
            return self._fully_shard(model, trainable=True)
        return model

    def wrap_reference(self, model: torch.nn.Module) -> torch.nn.Module:
        """The frozen reference: sharded under fsdp2 (its forward then gathers blocks like the policy's), else whole."""
        model = model.requires_grad_(False).eval().to(self.processes.device)
        return self._fully_shard(model, trainable=False) if self.strategy == "fsdp2" else model

    def _fully_shard(self, model: torch.nn.Module, *, trainable: bool) -> torch.nn.Module:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        block_classes = set(getattr(model, "_no_split_modules", None) or ())
        if not block_classes:
            raise ConfigError(f"{type(model).__name__} lists no transformer block classes (_no_split_modules)")
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if self.bf16 else None
        options = {"mp_policy": policy} if policy is not None and trainable else {}
        blocks = [module for module in model.modules() if type(module).__name__ in block_classes]
        for block in blocks:
            fully_shard(block, **options)
        fully_shard(model, **options)
        return model

    def module(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model whose methods (`generate`, `save_pretrained`) are called: DDP's inner module, else the model."""
        return model.module if self.strategy == "ddp" else model

    @contextlib.contextmanager
    def rollout(self, model: torch.nn.Module) -> Iterator[None]:
        """Generation from `model` for a whole rollout phase: under fsdp2 each block is gathered once and kept."""
        if self.strategy != "fsdp2":
            with self.compute():
                yield
            return
        from torch.distributed.fsdp import FSDPModule

        sharded = [module for module in model.modules() if isinstance(module, FSDPModule)]
        for module in sharded:
            module.set_reshard_after_forward(False, recurse=False)
        try:
            yield
        finally:
            for module in sharded:
                module.reshard()
                module.set_reshard_after_forward(True, recurse=False)

    def compute(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for unsharded models on GPUs (fsdp2 casts through its mixed-precision policy instead)."""
        if self.bf16 and self.strategy != "fsdp2" and self.processes.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, model: torch.nn.Module, loss: torch.Tensor, *, last: bool) -> None:
        """Backpropagate one micro-batch; gradients are synchronised across processes only at the step's `last`."""
        if self.strategy == "fsdp2":
            model.set_requires_gradient_sync(last)
            loss.backward()
        elif self.strategy == "ddp" and not last:
            with model.no_sync():
                loss.backward()
        else:
            loss.backward()

    def clip_grad_norm(self, model: torch.nn.Module, max_norm: float) -> float:
        """Clip the global gradient norm (over every shard) to `max_norm`; the norm before clipping."""
        parameters = [p for p in model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        full = getattr(norm, "full_tensor", None)  # a DTensor under fsdp2
        return float(full() if full is not None else norm)

    def full_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Every weight, whole and on the CPU, on the main process (an empty dict elsewhere)."""
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(model, options=options)
        return state if self.processes.is_main else {}

    def full_tensors(self, model: torch.nn.Module, dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor]]:
        """Every weight by name, whole and in `dtype`, one at a time on every process (gathered under fsdp2)."""
        for name, value in get_model_state_dict(model).items():
            full = value.full_tensor() if hasattr(value, "full_tensor") else value
            yield name, full.to(dtype)

    def training_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """This process's share of the trainable weights (fp32) and of the optimizer state, for DCP."""
        options = StateDictOptions(ignore_frozen_params=True)
        return {
            "model": get_model_state_dict(model, options=options),
            "optimizer": get_optimizer_state_dict(model, optimizer, options=options),
        }

    def load_training_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
        """Put what `training_state` returned (after `dcp.load` filled it) back into the model and optimizer."""
        options = StateDictOptions(ignore_frozen_params=True, strict=False)  # frozen weights are the starting model's
        set_model_state_dict(model, state["model"], options=options)
        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=options)
