"""This process's place in a multi-process run (torchrun), and the collectives that keep ranks in step.

Under `torchrun` every process runs the same loop on its own batches; DistributedDataParallel averages the
gradients. Anything a rank decides on its own (stop now? how many steps are left? is an evaluation due by the
clock?) must be agreed in one collective, or ranks enter different collectives and the job hangs. NCCL between
GPUs, gloo between CPU processes; one process alone needs none of this (`DistInfo()` is rank 0 of 1). A rank that
fails must end the job rather than leave its partners waiting: engine.train.job raises (torchrun then stops every
rank), and every collective has a timeout (`COLLECTIVE_TIMEOUT_S`) for a rank that hangs instead of failing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

# How long a rank waits in one collective before it gives up and the job fails. The longest legitimate wait is
# one rank compiling its model (torch.compile, a minute or two on a cold cache) while the others already wait to
# agree on it, so this is well above that; it is here for a rank that hangs without dying (a rank that dies ends
# the job at once), and is far below the backends' defaults (10 min NCCL, 30 min gloo), which would hold a GPU
# slot that long.
COLLECTIVE_TIMEOUT_S = 300.0


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

    NCCL between GPUs, gloo between CPU processes, with `COLLECTIVE_TIMEOUT_S`. Without torchrun this returns a
    single-process DistInfo. Each process trains on GPU LOCAL_RANK (engine.device picks the current GPU when the
    device is "cuda"). A group someone else joined already (Ray Train) is used as it is.
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
        dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                                timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    return info


def agree_step(loss: torch.Tensor, any_flags: Sequence[bool], main_flags: Sequence[bool],
               info: DistInfo) -> tuple[float, list[bool], list[bool]]:
    """One collective per read-back: the loss averaged over ranks, each of `any_flags` true if any rank raised it,
    and `main_flags` as rank 0 has them (the other ranks' are ignored).

    `any_flags` come from each process's own clock and stop request (stop now, out of time); `main_flags` from
    rank 0's clock alone (an evaluation or a sample is due by time). Acting on either unagreed would send ranks
    into different collectives (one evaluating, one training) and hang the job.
    """
    mine = [float(f) for f in main_flags] if info.is_main else [0.0] * len(main_flags)
    flags = torch.tensor([*(float(f) for f in any_flags), *mine], device=loss.device)
    t = torch.cat([loss.detach().float().view(1), flags])  # NCCL needs the tensor on the GPU
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    values = t.tolist()
    n = len(any_flags)
    return values[0] / info.world_size, [v > 0 for v in values[1:1 + n]], [v > 0 for v in values[1 + n:]]


def agree_min(value: int, device: torch.device) -> int:
    """The smallest of every rank's `value`: a step plan every rank can keep, or a yes (1) / no (0) that holds
    only if every rank says yes (bf16 is faster here, torch.compile worked here)."""
    return agree_mins([value], device)[0]


def agree_mins(values: Sequence[int], device: torch.device) -> list[int]:
    """`agree_min` for several values at once, in one collective."""
    t = torch.tensor(list(values), dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return [int(v) for v in t.tolist()]


def agree_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of a scalar tensor over all ranks."""
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / info.world_size


def gather_all(value: Any, info: DistInfo) -> list[Any]:
    """Every rank's `value` (picklable), in rank order, on every rank; `[value]` when alone."""
    if not info.enabled:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out
