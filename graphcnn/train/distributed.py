"""Distributed data parallel on torch's own launcher: ``torchrun`` sets the environment.

Under ``torchrun --nproc_per_node N`` (or ``--nnodes``/``--rdzv-endpoint`` across machines)
every process reads ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` and joins one process group:
NCCL when training on GPUs, gloo on CPU. Without those variables the run is one process and
nothing here touches torch.distributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from graphcnn.train.config import TrainConfig, TrainError


@dataclass(frozen=True)
class Dist:
    """This process's place in the run."""

    rank: int
    world: int
    local_rank: int
    device: Any

    @property
    def main(self) -> bool:
        """Only rank 0 writes files and shows progress."""
        return self.rank == 0


def pick_device(config: TrainConfig, local_rank: int) -> Any:
    import torch

    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainError("--device cuda: no CUDA device is available", "use --device cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(config: TrainConfig) -> Dist:
    """Join the process group when launched by torchrun; a one-process Dist otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(config, local)
    if world > 1:
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend)
    return Dist(rank, world, local, device)


def teardown(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_sum(d: Dist, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over every rank (float64, on the process's device)."""
    if d.world == 1:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


def wrap(model: Any, d: Dist) -> Any:
    """``model`` in DistributedDataParallel when there is more than one process."""
    if d.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [d.device.index] if d.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def check_batch(batch_size: int, d: Dist) -> int:
    """The per-process batch of a global ``--batch-size``."""
    if batch_size % d.world:
        raise TrainError(
            f"--batch-size {batch_size} is the global batch and must divide evenly among "
            f"{d.world} processes",
            f"use a multiple of {d.world}",
        )
    return batch_size // d.world
