"""Processes started by ``torchrun``: who am I, which device is mine, and how to meet the others.

Shared by ``medswin train`` (DDP) and ``medswin predict`` (cases sharded by rank). Outside
``torchrun`` everything here is a single process of world size 1 and no process group is made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from medswin.errors import MedSwinError

__all__ = ["DistContext", "setup_distributed", "all_gather", "barrier"]


@dataclass
class DistContext:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run alone).

    Attributes:
        rank / world / local_rank: torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``.
        device: the torch device this rank computes on (``cuda:<local_rank>`` for GPUs).
        owns_group: whether :func:`setup_distributed` made the process group (and must destroy it).
    """

    rank: int
    world: int
    local_rank: int
    device: Any
    owns_group: bool

    @property
    def main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        """Destroy the process group if this context made it."""
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def setup_distributed(
    device_spec: str, *, backend: str | None = None, timeout: timedelta | None = None
) -> DistContext:
    """Read torchrun's environment and, when there are several processes, join the process group.

    Args:
        device_spec: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``; under torchrun a bare
            ``"cuda"`` becomes ``cuda:<LOCAL_RANK>``.
        backend: process-group backend; default NCCL for GPUs, gloo for CPUs.
        timeout: how long collective calls wait for the slowest rank (torch's default otherwise).
    """
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_spec == "auto":
        device_spec = "cuda" if torch.cuda.is_available() else "cpu"
    if device_spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MedSwinError(f"device {device_spec!r} was asked for, but this torch build sees no CUDA GPU")
        device = torch.device(device_spec if ":" in device_spec or world == 1 else f"cuda:{local_rank}")
        torch.cuda.set_device(device)
    else:
        device = torch.device(device_spec)
    owns = False
    if world > 1 and not dist.is_initialized():
        options: dict[str, Any] = {"backend": backend or ("nccl" if device.type == "cuda" else "gloo")}
        if timeout is not None:
            options["timeout"] = timeout
        dist.init_process_group(**options)
        owns = True
    return DistContext(rank, world, local_rank, device, owns)


def all_gather(value: Any, ctx: DistContext) -> list[Any]:
    """``value`` from every rank, in rank order (picklable Python objects)."""
    if ctx.world == 1:
        return [value]
    import torch.distributed as dist

    gathered: list[Any] = [None] * ctx.world
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here."""
    if ctx.world > 1:
        import torch.distributed as dist

        dist.barrier()
