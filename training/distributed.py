"""The training processes: who this process is among them, its device, and the few collectives the trainer needs.

`torchrun` and `accelerate launch` both start N processes and describe them in the environment (`RANK`,
`WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`); the trainer joins them itself, with NCCL between GPUs
and gloo on CPUs, so one code path serves one CPU process, 2 CPU processes in a test, and nodes of 8 GPUs.
accelerate's DeepSpeed and FSDP plugins are not used (sharding is the recipe's `parallel` section), so a launch
with such a config is refused before any model loads rather than silently running something else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from datagen.errors import ConfigError

REFUSED_LAUNCH_PLUGINS = {
    "ACCELERATE_USE_DEEPSPEED": (
        "DeepSpeed is not supported: ZeRO's engine steps the optimizer at every micro-batch and needs its own "
        "generation path for ZeRO-3 weights. Use the recipe's `parallel: {strategy: fsdp2}` (FSDP2 full "
        "sharding, ZeRO-3's equivalent) and launch with torchrun or one of training/configs/*.yaml"
    ),
    "ACCELERATE_USE_FSDP": (
        "accelerate's FSDP plugin is not used: the trainer shards the model itself. Set the recipe's "
        "`parallel: {strategy: fsdp2}` and launch with torchrun or one of training/configs/*.yaml (no fsdp_config)"
    ),
}


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (one process when not launched by a launcher)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """The process that writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def start(cls) -> Processes:
        """Join the processes the launcher started (if any) and pick this process's device.

        Raises:
            ConfigError: launched with an accelerate DeepSpeed or FSDP config, which the trainer does not use.
        """
        for variable, reason in REFUSED_LAUNCH_PLUGINS.items():
            if os.environ.get(variable, "").lower() == "true":
                raise ConfigError(reason)
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        on_gpu = torch.cuda.is_available()
        device = torch.device("cuda", local_rank) if on_gpu else torch.device("cpu")
        if on_gpu:
            torch.cuda.set_device(device)
        if world_size > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if on_gpu else "gloo", device_id=device if on_gpu else None)
        return cls(rank=rank, world_size=world_size, local_rank=local_rank, device=device)

    def gather(self, items: list[Any]) -> list[Any]:
        """Every process's `items` (picklable), concatenated in rank order, on every process."""
        if not self.distributed:
            return list(items)
        gathered: list[list[Any] | None] = [None] * self.world_size
        dist.all_gather_object(gathered, list(items))
        return [item for part in gathered for item in part]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group (after the last collective)."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
