"""What a run measures besides its training loss: the validation loss on fixed batches, and a text sample.

    loss = estimate_loss(state, "val", n_batches=50)   # the mean loss over 50 fixed validation batches
    text = generate_sample(state)                      # what the model writes now, from a fixed prompt and seed

The batches of an estimate are the same at every call (a fixed seed), so the curve moves only because the model
changed, not because the batches did; the samples share one seed for the same reason. `Evaluations` is the loop's
(engine.train.loop) view of them: every estimate it makes is timed, so a run with a time budget knows how long its
end-of-run evaluation will take and keeps that time in reserve. Fine-tunes (engine.train.finetune) are measured on
their original corpus too, so forgetting shows beside learning.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from engine.train.distributed import agree_mean
from engine.train.prepare import TrainState
from engine.transform.data import TextDataset


@torch.inference_mode()
def estimate_loss(state: TrainState, split: str, n_batches: int, deadline: float | None = None,
                  min_batches: int = 1, timings: list[float] | None = None,
                  data: TextDataset | None = None) -> float:
    """Mean loss over `n_batches` batches of `split`. The batches are the same at every call (a fixed seed),
    so the curve moves only because the model changed, not because the batches did.

    `deadline` (a time.perf_counter() value): stop early, after at least `min_batches`, if it passes (a machine
    that suddenly got busy must not push a timed run far past its budget). Ignored under DDP, where every
    process must run the same number of batches. `timings`, if given, receives each batch's seconds (on a GPU
    each batch is then waited for: its kernels run asynchronously, so the clock alone would time the launches). `data`:
    another text's splits instead of the run's (a fine-tune's original corpus). Under torch.inference_mode:
    no autograd bookkeeping at all, not only no gradients.
    """
    model, cfg = state.evaluator, state.config  # the compiled model where there is one
    model.eval()
    g = torch.Generator().manual_seed(cfg.seed + 10_000 + 7 * state.dist.rank + (1 if split == "val" else 0))
    total = torch.zeros((), device=state.device.device)
    done = 0
    timed = timings is not None or deadline is not None
    if timed:
        state.device.synchronize()
    for _ in range(n_batches):
        t = time.perf_counter()
        source = state.data if data is None else data
        x, y = source.get_batch(split, cfg.batch_size, cfg.model.block_size, g, state.device.device)  # (B, T) each
        with state.device.autocast():
            _, loss = model(x, y)
        total += loss.float()
        done += 1
        if timed:
            state.device.synchronize()
        if timings is not None:
            timings.append(time.perf_counter() - t)
        if deadline is not None and not state.dist.enabled and done >= min_batches and time.perf_counter() > deadline:
            break
    model.train()
    mean = total / done
    if state.dist.enabled:
        mean = agree_mean(mean, state.dist)
    return float(mean)


def generate_sample(state: TrainState, n_tokens: int | None = None, prompt: str | None = None) -> str:
    """A short text from a fixed prompt and a fixed random seed, so successive samples differ only because the
    model learned something. Returns the prompt followed by what the model wrote."""
    cfg = state.config
    prompt = cfg.sample_prompt if prompt is None else prompt
    try:
        ids = state.tokenizer.encode(prompt)
    except ValueError:  # the prompt uses a character this corpus lacks
        ids = []
    if not ids:
        ids = state.data.train[:1].tolist()
    idx = torch.tensor([ids], dtype=torch.long, device=state.device.device)  # (1, T)
    g = torch.Generator(device=state.device.device).manual_seed(cfg.seed)
    with state.device.autocast():
        out = state.model.generate(idx, n_tokens or cfg.sample_tokens, temperature=1.0, generator=g)
    return state.tokenizer.decode(out[0].tolist())


class Evaluations:
    """The loop's estimates, each written into its step's record and timed. `deadline`: where a timed run's
    evaluation stops early, however busy the machine got (see estimate_loss)."""

    def __init__(self, state: TrainState, deadline: float | None):
        self.state, self.deadline = state, deadline
        self.s_per_batch = math.inf  # the best measured time of one evaluation batch

    def loss(self, split: str, n_batches: int, data: TextDataset | None = None) -> float:
        times: list[float] = []
        loss = estimate_loss(self.state, split, n_batches, deadline=self.deadline,
                             min_batches=min(n_batches, self.state.config.eval_batches), timings=times, data=data)
        # the median batch: the very first evaluation pays one-off costs on its first batch
        self.s_per_batch = min(self.s_per_batch, sorted(times)[len(times) // 2])
        return loss

    def validate(self, record: dict[str, Any], n_batches: int) -> None:
        """The validation loss, and beside it a fine-tune's old corpus's on the same kind of fixed batches: is it
        forgetting?"""
        record["val_loss"] = self.loss("val", n_batches)
        if self.state.original_data is not None:
            record["val_loss_original"] = self.loss("val", n_batches, self.state.original_data)

    def finish(self, record: dict[str, Any]) -> None:
        """Mark the run's last record, with the training split's loss measured as the validation loss is."""
        record["train_eval_loss"] = self.loss("train", self.state.config.eval_batches)
        record["final"] = True

    def final(self, record: dict[str, Any], thorough: bool) -> None:
        """The end-of-run evaluation: over final_eval_batches when `thorough`, else the usual few (a learner who
        pressed Stop wants it to stop now, not in five seconds)."""
        cfg = self.state.config
        self.validate(record, cfg.final_eval_batches if thorough else cfg.eval_batches)
        self.finish(record)

    def final_seconds(self, slowdown: float) -> float:
        """How long the thorough end-of-run evaluation will take: its batches at the best measured speed, slowed
        down as much as training has been lately (`slowdown`: a busy machine), with a margin."""
        cfg = self.state.config
        per = self.s_per_batch if math.isfinite(self.s_per_batch) else 0.0
        val_sets = 2 if self.state.original_data is not None else 1
        return 1.1 * per * slowdown * (val_sets * cfg.final_eval_batches + cfg.eval_batches) + 0.05
