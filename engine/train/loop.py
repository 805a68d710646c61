"""The training loop: next-token prediction, one optimizer step at a time, publishing a metrics record per step.

    state = prepare(PRESETS["tiny"], text)             # engine.train.prepare
    outcome = train_loop(state, on_record=print)       # this module
    save_run(state, outcome, "runs/demo")              # engine.train.job: the "Load" stage

Where the ideas come from: the loop itself is Karpathy's nanoGPT `train.py`; gradient clipping Pascanu et al.
2013; the evaluation on fixed batches so the curve moves only when the model does. The loop ends at `max_steps`,
when its wall-clock `time_budget` runs out (engine.train.schedule plans the schedule for it), on divergence, or when
`stop_event` is set.

On a GPU the loop keeps the device busy: no host synchronisation per step (the loss is read back every 16 steps,
`readback_every`), the next batch drawn before the backward pass, evaluation with the compiled model under
torch.inference_mode, and samples generated with the key-value cache.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.load import checkpoint
from engine.train.config import PRESETS, TrainConfig
from engine.train.distributed import agree_mean, agree_min, agree_step
from engine.train.prepare import TrainState
from engine.train.schedule import (
    BudgetPlanner,
    EarlyStopping,
    eval_every,
    lr_factor,
    resumed_factor,
)
from engine.transform.data import TextDataset

CUDA_READBACK_EVERY = 16  # steps between loss read-backs on a GPU (a 10 ms step: about every 0.2 s)


def readback_every(config: TrainConfig, device_type: str) -> int:
    """How often the loop reads the loss and gradient norm back from the device: `config.readback_every`, or
    every step on a CPU (the numbers are already in host memory) and every 16 on a GPU, where each read-back
    makes the host wait for the GPU to finish and leaves it idle while the next step is launched.

    >>> readback_every(TrainConfig(), "cpu"), readback_every(TrainConfig(), "cuda")
    (1, 16)
    """
    if config.readback_every is not None:
        return max(1, config.readback_every)
    return CUDA_READBACK_EVERY if device_type == "cuda" else 1


def prefetches(device_type: str) -> bool:
    """Draw the next batch before the backward pass (on a GPU, where its indexing then overlaps the backward;
    on a CPU the same cores would do both, so nothing is gained)."""
    return device_type == "cuda"


def _read_back(pending: list[tuple[dict[str, Any], torch.Tensor, torch.Tensor]],
               dinfo: Any) -> list[tuple[int, float]]:
    """Fill the waiting records' train_loss and grad_norm in one transfer (averaged over ranks under torchrun);
    returns (step, loss) of each, oldest first."""
    if not pending:
        return []
    losses = torch.stack([loss.float() for _, loss, _ in pending])  # (n,)
    norms = torch.stack([norm.float() for _, _, norm in pending])  # (n,)
    if dinfo.enabled:
        losses = agree_mean(losses, dinfo)
    both = torch.stack([losses, norms]).tolist()  # the one host-device transfer
    for (rec, _, _), loss, norm in zip(pending, both[0], both[1], strict=True):
        rec["train_loss"], rec["grad_norm"] = loss, norm
    return [(rec["step"], rec["train_loss"]) for rec, _, _ in pending]


@torch.inference_mode()
def estimate_loss(state: TrainState, split: str, n_batches: int, deadline: float | None = None,
                  min_batches: int = 1, timings: list[float] | None = None,
                  data: TextDataset | None = None) -> float:
    """Mean loss over `n_batches` batches of `split`. The batches are the same at every call (a fixed seed),
    so the curve moves only because the model changed, not because the batches did.

    `deadline` (a time.perf_counter() value): stop early, after at least `min_batches`, if it passes (a machine
    that suddenly got busy must not push a timed run far past its budget). Ignored under DDP, where every
    process must run the same number of batches. `timings`, if given, receives each batch's seconds. `data`:
    another text's splits instead of the run's (a fine-tune's original corpus). Under torch.inference_mode:
    no autograd bookkeeping at all, not only no gradients.
    """
    model, cfg = state.evaluator, state.config  # the compiled model where there is one
    model.eval()
    g = torch.Generator().manual_seed(cfg.seed + 10_000 + 7 * state.dist.rank + (1 if split == "val" else 0))
    total = torch.zeros((), device=state.device.device)
    done = 0
    for _ in range(n_batches):
        t = time.perf_counter()
        source = state.data if data is None else data
        x, y = source.get_batch(split, cfg.batch_size, cfg.model.block_size, g, state.device.device)
        with state.device.autocast():
            _, loss = model(x, y)
        total += loss.float()
        done += 1
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


def divergence_message(loss: float, step: int, config: TrainConfig, start_loss: float) -> str:
    """A plain explanation for a learner of why the run stopped."""
    if config.optimizer == "muon":
        used = f"you used lr={config.lr:g} and muon_lr={config.muon_lr:g}"
        near = f"lr={PRESETS['lesson'].lr:g} and muon_lr={PRESETS['lesson'].muon_lr:g}"
    else:
        used, near = f"you used lr={config.lr:g}", "lr=1e-3"  # AdamW's usual range for small GPTs: 1e-4 .. 3e-3
    if math.isnan(loss) or math.isinf(loss):
        what = "NaN (not a number)" if math.isnan(loss) else "infinite"
        return (f"The loss became {what} at step {step}: the updates grew so large the numbers overflowed. "
                f"This usually means the learning rate is too high ({used}); try something near {near}.")
    return (f"The loss shot up to {loss:.1f} at step {step}, far above the {start_loss:.1f} it started from: the "
            f"updates overshoot instead of going downhill. This usually means the learning rate is too high "
            f"({used}); try something near {near}.")


@dataclass
class TrainOutcome:
    """How a run ended: status "finished", "stopped" or "diverged", a message for the learner, headline numbers."""

    status: str
    message: str
    summary: dict[str, Any]


# ---------------------------------------------------------------------------------------------------------
# The loop


def train_loop(
    state: TrainState,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    stop_event: threading.Event | None = None,
    on_checkpoint: Callable[[TrainState, dict[str, Any]], None] | None = None,
) -> TrainOutcome:
    """Train until max_steps, the time budget, divergence or `stop_event`; publish one record per step.

    `on_checkpoint(state, record)` is called after each published record of a healthy run (the job uses it to
    save checkpoints during training); it must not run collectives, since only rank 0 may call it.

    A record is a plain dict: step, train_loss (this step's batch), val_loss (None except at evaluations),
    lr, grad_norm, tokens_per_s, elapsed_s, eta_s, tokens; plus "val_loss_original" beside every val_loss when
    the run fine-tunes with its original corpus (state.original_data), "sample" (text) when one was generated, on
    the first record this call publishes "notes" (state.notes: what prepare changed, e.g. no torch.compile) if
    any, and on the last step "final": True and "train_eval_loss". Step 0 (a fresh run) is the untrained model: its
    validation loss is near ln(vocab_size) and its sample is gibberish.

    On a GPU the loss is read back every `readback_every` steps (16), not every step: the records of the steps
    between are held back and published together at the read-back, complete (train_loss and grad_norm filled
    in), so every consumer sees the same records as on a CPU, in bursts of 16. Divergence is noticed there too.
    """
    cfg, model, dinfo = state.config, state.train_model, state.dist
    publish = on_record or (lambda record: None)
    t0 = time.perf_counter()
    start_step = state.step
    # A resumed run with a fresh time budget gets a fresh warm-up + cosine; with max_steps it continues.
    sched_start = start_step if (cfg.time_budget and start_step > 0) else 0
    # ... unless it was stopped part-way: then it goes on down the cosine it was on (engine.train.schedule).
    start_factor = resumed_factor(state.metrics[-1].get("lr"), cfg) if sched_start and state.metrics else None
    ln_vocab = math.log(state.tokenizer.vocab_size)
    eval_s_per_batch = [float("inf")]  # best measured time of one evaluation batch

    def elapsed() -> float:
        return time.perf_counter() - t0

    # the end-of-run evaluation may overrun the budget by 5% + 1 s at most, however busy the machine gets
    deadline = t0 + 1.05 * cfg.time_budget + 1.0 if cfg.time_budget else None

    def timed_eval(split: str, n: int, data: TextDataset | None = None) -> float:
        times: list[float] = []
        loss = estimate_loss(state, split, n, deadline=deadline, min_batches=min(n, cfg.eval_batches), timings=times,
                             data=data)
        # the median batch: the very first evaluation pays one-off costs on its first batch
        eval_s_per_batch[0] = min(eval_s_per_batch[0], sorted(times)[len(times) // 2])
        return loss

    step_times = [float("inf"), 0.0]  # best and recent (smoothed) seconds per training step (between read-backs)

    def final_reserve() -> float:
        # time the end-of-run evaluation will take: val over final_eval_batches + train over eval_batches,
        # at the best measured speed, slowed down as much as training has been lately (a busy machine)
        per = eval_s_per_batch[0] if math.isfinite(eval_s_per_batch[0]) else 0.0
        slowdown = max(1.0, step_times[1] / step_times[0]) if math.isfinite(step_times[0]) else 1.0
        val_sets = 2 if state.original_data is not None else 1
        return 1.1 * per * slowdown * (val_sets * cfg.final_eval_batches + cfg.eval_batches) + 0.05

    def eval_original(rec: dict[str, Any], n: int) -> None:
        """A fine-tune's old corpus, on the same kind of fixed batches as its new one: is it forgetting?"""
        if state.original_data is not None:
            rec["val_loss_original"] = timed_eval("val", n, state.original_data)

    if start_step == 0:
        rec = {"step": 0, "train_loss": None, "val_loss": timed_eval("val", cfg.eval_batches), "lr": 0.0,
               "grad_norm": None, "tokens_per_s": None, "elapsed_s": 0.0, "eta_s": cfg.time_budget, "tokens": 0}
        rec["train_loss"] = rec["val_loss"]  # nothing trained yet: both splits look the same to the model
        eval_original(rec, cfg.eval_batches)
        if dinfo.is_main and cfg.sample_interval:
            rec["sample"] = generate_sample(state)
        if state.notes:
            rec["notes"] = list(state.notes)
        state.metrics.append(rec)
        publish(rec)
    start_loss = state.metrics[0]["val_loss"] if state.metrics else ln_vocab

    planner = BudgetPlanner(cfg.time_budget, cfg.max_steps, start_step, cfg.eval_interval)
    early = EarlyStopping(cfg.early_stop_patience) if cfg.early_stop_patience else None
    k = readback_every(cfg, state.device.type)
    prefetch = prefetches(state.device.type)
    pending: list[tuple[dict[str, Any], torch.Tensor, torch.Tensor]] = []  # records awaiting their read-back
    synced = (time.perf_counter(), start_step)  # clock and step of the last read-back
    batch: tuple[torch.Tensor, torch.Tensor] | None = None
    tok_rate = None
    status, message = "finished", ""
    while planner.total_steps is None or state.step < planner.total_steps:
        factor = lr_factor(state.step, cfg, planner.total_steps, sched_start, start_factor)
        for opt in state.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor

        x, y = batch if batch is not None else state.data.get_batch(
            "train", cfg.batch_size, cfg.model.block_size, state.generator, state.device.device)  # (B, T) each
        with state.device.autocast():
            _, loss = model(x, y)
        if prefetch:  # the next batch, drawn while the GPU still works: its indexing overlaps the backward
            batch = state.data.get_batch("train", cfg.batch_size, cfg.model.block_size, state.generator,
                                         state.device.device)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else 1e30)
        for opt in state.optimizers:
            opt.step()
        for opt in state.optimizers:
            opt.zero_grad(set_to_none=True)
        state.step += 1

        planner.note_step(state.step, elapsed())
        reserve = final_reserve()
        want_stop = stop_event is not None and stop_event.is_set()
        over_time = cfg.time_budget is not None and elapsed() + reserve >= cfg.time_budget
        early_end = planner.ran_out_early(state.step, elapsed(), reserve)
        every = eval_every(cfg.eval_interval, planner.total_steps, cfg.eval_points)
        due_sample = bool(dinfo.is_main and cfg.sample_interval and state.step % cfg.sample_interval == 0)
        # Read the loss back (a host-device synchronisation on a GPU) every k steps, and wherever a decision needs
        # it: evaluations, samples, a re-plan, the planned end. On a CPU k = 1: every step, as reading is free.
        # Under torchrun the step-count conditions are the same on every rank, so they meet in the same collective.
        sync = (k == 1 or state.step % k == 0 or state.step % every == 0 or due_sample or planner.due(state.step)
                or (planner.total_steps is not None and state.step >= planner.total_steps)
                or (not dinfo.enabled and (want_stop or over_time or early_end)))
        tokens = state.tokens_before + (state.step - start_step) * state.tokens_per_step
        rec = {"step": state.step, "train_loss": None, "val_loss": None, "lr": state.optimizers[0].param_groups[0]["lr"],
               "grad_norm": None, "tokens_per_s": tok_rate, "elapsed_s": state.elapsed_before + elapsed(),
               "eta_s": None, "tokens": tokens}
        if not sync:
            if cfg.time_budget is not None:
                rec["eta_s"] = max(0.0, cfg.time_budget - elapsed())
            pending.append((rec, loss.detach(), grad_norm.detach()))
            continue

        # One read-back per k steps: every waiting loss and gradient norm in one transfer. Every decision a process
        # could make from its own clock (stop now, out of time, the plan ran out early) is agreed here in the same
        # collective, so all ranks take the same branch and none waits in a collective its partners skipped.
        if dinfo.enabled:
            loss_val, want_stop, over_time, early_end = agree_step(loss, want_stop, over_time, early_end, dinfo)
        earlier = _read_back(pending, dinfo)
        if not dinfo.enabled:
            loss_val = loss.item()
        grad_val = float(grad_norm)
        now = time.perf_counter()
        dt = (now - synced[0]) / max(1, state.step - synced[1])  # seconds per step since the last read-back
        if state.step > start_step + 1:  # the first step pays one-off costs (allocations, kernel choice)
            step_times[0] = min(step_times[0], dt)
            step_times[1] = dt if step_times[1] == 0.0 else 0.8 * step_times[1] + 0.2 * dt
        rate = state.tokens_per_step / dt
        tok_rate = rate if tok_rate is None else 0.9 * tok_rate + 0.1 * rate

        diverged = False
        for step_no, value in [*earlier, (state.step, loss_val)]:
            if not math.isfinite(value) or (step_no > 1 and value > 2 * ln_vocab + 2):
                status, message = "diverged", divergence_message(value, step_no, cfg, start_loss)
                diverged = True
                break
        for old, _, _ in pending:
            old["tokens_per_s"] = old["tokens_per_s"] or tok_rate
            state.metrics.append(old)
            publish(old)
        pending.clear()

        # Plan the schedule for the time budget from the measured speed (engine.train.schedule.BudgetPlanner).
        if planner.due(state.step) or early_end:
            planned = planner.propose(state.step, elapsed(), reserve)
            if dinfo.enabled:
                planned = agree_min(planned, state.device.device)
            planner.accept(planned)
            every = eval_every(cfg.eval_interval, planner.total_steps, cfg.eval_points)  # from the new plan

        last = diverged or want_stop or over_time or (planner.total_steps is not None and state.step >= planner.total_steps)
        rec.update(train_loss=loss_val, grad_norm=grad_val, tokens_per_s=tok_rate)
        if last and not diverged:
            thorough = not want_stop  # a learner pressing Stop wants it to stop now, not in 5 seconds
            rec["val_loss"] = timed_eval("val", cfg.final_eval_batches if thorough else cfg.eval_batches)
            eval_original(rec, cfg.final_eval_batches if thorough else cfg.eval_batches)
            rec["train_eval_loss"] = timed_eval("train", cfg.eval_batches)
            rec["final"] = True
        elif not diverged and state.step % every == 0:
            rec["val_loss"] = timed_eval("val", cfg.eval_batches)
            eval_original(rec, cfg.eval_batches)
            # the validation loss is agreed across ranks, so every rank takes this branch together
            if early is not None and early.update(state.step, rec["val_loss"]):
                last, message = True, early.message(state.step, every)
                rec["train_eval_loss"] = timed_eval("train", cfg.eval_batches)
                rec["final"] = True
        if dinfo.is_main and cfg.sample_interval and not diverged and (due_sample or last):
            rec["sample"] = generate_sample(state)
        if state.step == start_step + 1 and start_step > 0 and state.notes:  # resumed: no step-0 record
            rec["notes"] = list(state.notes)
        rec["elapsed_s"] = state.elapsed_before + elapsed()
        if cfg.time_budget is not None:
            rec["eta_s"] = 0.0 if last else max(0.0, cfg.time_budget - elapsed())
        elif planner.total_steps is not None and state.step > start_step:
            rec["eta_s"] = (planner.total_steps - state.step) * elapsed() / (state.step - start_step)
        state.metrics.append(rec)
        publish(rec)
        if on_checkpoint is not None and not diverged:
            on_checkpoint(state, rec)
        synced = (time.perf_counter(), state.step)  # the next steps' time starts here: evaluations left out
        if last:
            if want_stop and not diverged:
                status = "stopped"
            break

    summary = checkpoint.summarize_metrics(state.metrics)
    summary.update(params=state.model.num_params(), device=state.device.sentence, status=status, message=message)
    return TrainOutcome(status=status, message=message, summary=summary)

