"""Each process's random state, saved with a run and put back on resume, so a resumed run goes on drawing the
batches and dropout masks it would have drawn had it never stopped.

A process draws from two sources: the run's batch generator (`TrainState.generator`, seeded with seed + rank) and
torch's default generators, which dropout uses (the CPU's, and the GPU's on CUDA). Only rank 0 writes the
checkpoint, so under torchrun `gather` collects every rank's state there (a collective: every rank calls it at the
same step). The checkpoint's "rng" is {"world_size": N, "ranks": [rank 0's, rank 1's, ...]}; older checkpoints
hold rank 0's batch generator alone. A resume under another number of processes restores each rank that existed
before; a new rank starts generators of its own, seeded from its rank and the step, so it does not replay the
batches of the run's start. The global batch then differs from the one the run would have drawn (more or fewer
sequences per step), so such a resume continues the run, not bit for bit the same run.
"""

from __future__ import annotations

from typing import Any

import torch

from engine.device import DeviceInfo
from engine.train.distributed import DistInfo, gather_all

NEW_RANK_STEP_STRIDE = 1_000_003  # a new rank seeds from seed + rank + this x step: past any seed + rank a process began with


def rank_state(generator: torch.Generator, device: DeviceInfo) -> dict[str, Any]:
    """This process's random state: its batch generator's, torch's CPU generator's, and its GPU's on CUDA."""
    return {"batches": generator.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(device.device) if device.type == "cuda" else None}


def gather(generator: torch.Generator, device: DeviceInfo, dist_info: DistInfo) -> dict[str, Any]:
    """Every rank's random state, as a checkpoint's "rng" holds it. Under torchrun a collective: every rank calls
    it at the same step."""
    return {"world_size": dist_info.world_size, "ranks": gather_all(rank_state(generator, device), dist_info)}


def restore(saved: Any, generator: torch.Generator, device: DeviceInfo, dist_info: DistInfo, seed: int,
            step: int) -> str | None:
    """Put this rank's saved random state back (`saved`: a checkpoint's "rng"). Returns a sentence for the
    learner when the run was saved by another number of processes, else None."""
    if saved is None:
        return None
    if isinstance(saved, torch.Tensor):  # an older checkpoint: rank 0's batch generator alone
        if not dist_info.enabled:
            generator.set_state(saved)
        return None
    ranks = saved["ranks"]
    if dist_info.rank < len(ranks):
        mine = ranks[dist_info.rank]
        generator.set_state(mine["batches"])
        torch.set_rng_state(mine["torch"])
        if mine.get("cuda") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], device.device)
    else:
        fresh = seed + dist_info.rank + NEW_RANK_STEP_STRIDE * step
        generator.manual_seed(fresh)
        torch.manual_seed(fresh)
    if len(ranks) == dist_info.world_size:
        return None
    return (f"This run was saved by {len(ranks)} process{'es' if len(ranks) > 1 else ''} and resumes on "
            f"{dist_info.world_size}: each process that trained before goes on with its own random batches, "
            "any new one starts a fresh sequence, and every step now reads "
            f"{dist_info.world_size} process{'es' if dist_info.world_size > 1 else ''}' batches.")
