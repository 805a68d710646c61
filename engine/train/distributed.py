"""This process's place in a multi-process run (torchrun), and the collectives that keep ranks in step.

Under `torchrun` every process runs the same loop on its own batches; DistributedDataParallel averages the
gradients. Anything a rank decides on its own (stop now? how many steps are left?) must be agreed in one
collective, or ranks enter different collectives and the job hangs. NCCL between GPUs, gloo between CPU
processes; one process alone needs none of this (`DistInfo()` is rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """This process's place under torchrun (rank 0 of 1 when run alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes in its environment variables (RANK, WORLD_SIZE, ...).

    NCCL between GPUs, gloo between CPU processes. Without torchrun this returns a single-process DistInfo.
    Each process trains on GPU LOCAL_RANK (engine.device picks the current GPU when the device is "cuda").
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    info = DistInfo(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                    world_size=int(os.environ["WORLD_SIZE"]),
                    local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    use_cuda = device.partition(":")[0] in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def agree_step(loss: torch.Tensor, want_stop: bool, over_time: bool, early_end: bool,
               info: DistInfo) -> tuple[float, bool, bool, bool]:
    """One collective per step: the loss averaged over ranks, and each flag true if any rank raised it.

    The flags come from each process's own clock and stop request; acting on them unagreed would send ranks
    into different collectives (one evaluating, one training) and hang the job.
    """
    flags = torch.tensor([float(want_stop), float(over_time), float(early_end)], device=loss.device)
    t = torch.cat([loss.detach().float().view(1), flags])  # NCCL needs the tensor on the GPU
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t[0]) / info.world_size, bool(t[1] > 0), bool(t[2] > 0), bool(t[3] > 0)


def agree_min(value: int, device: torch.device) -> int:
    """The smallest of every rank's `value`: a step plan every rank can keep, or a yes (1) / no (0) that holds
    only if every rank says yes (bf16 is faster here, torch.compile worked here)."""
    t = torch.tensor([value], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t)


def agree_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of a scalar tensor over all ranks."""
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size
