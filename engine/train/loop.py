"""The training loop: next-token prediction, one optimizer step at a time, publishing a metrics record per step.

    state = prepare(PRESETS["tiny"], text)             # engine.train.prepare
    outcome = train_loop(state, on_record=print)       # this module
    save_run(state, outcome, "runs/demo")              # engine.train.job: the "Load" stage

`train_step` is one step as in Karpathy's nanoGPT `train.py`: a batch, the forward pass under autocast, the
backward pass, the gradient clipped (Pascanu et al. 2013), the optimizers' step. `train_loop` runs it until
`max_steps`, the wall-clock `time_budget` (engine.train.schedule plans the learning rate for it), divergence,
early stopping or a stop request, and around it, each in a function of its own: the learning rate, evaluations
and samples (engine.train.evaluate, when engine.train.intervals says), records, the read-back, and agreement
between ranks under torchrun: a branch that leads to a collective is taken on values every rank shares (the step
count, or what the read-back's one collective agreed). On a GPU the loss is read back every 16 steps (each
read-back makes the host wait), and the next batch is drawn before the backward pass.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.load import checkpoint
from engine.train.config import PRESETS, TrainConfig
from engine.train.distributed import agree_mean, agree_step
from engine.train.evaluate import Evaluations, generate_sample
from engine.train.intervals import Intervals, samples
from engine.train.prepare import TrainState
from engine.train.schedule import Budget, EarlyStopping, Speed
from engine.train.status import RunStatus

CUDA_READBACK_EVERY = 16  # steps between loss read-backs on a GPU: each makes the host wait; 16 keep the chart live
Record = dict[str, Any]


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


class Batches:
    """The run's training batches, in the order its seed draws them; with `ahead`, one step ahead."""

    def __init__(self, state: TrainState, ahead: bool):
        self.state, self.ahead = state, ahead
        self.drawn: tuple[torch.Tensor, torch.Tensor] | None = None
        self.before_drawn: torch.Tensor | None = None  # the generator's state before the batch drawn ahead

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.state
        return s.data.get_batch("train", s.config.batch_size, s.config.model.block_size, s.generator, s.device.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's inputs and targets, (B, T) each: the batch drawn ahead, or a new one."""
        batch, self.drawn = self.drawn or self._draw(), None
        return batch

    def draw_ahead(self) -> None:
        if self.ahead:
            self.before_drawn = self.state.generator.get_state()
            self.drawn = self._draw()

    @contextlib.contextmanager
    def as_if_not_drawn_ahead(self) -> Iterator[None]:
        """The generator as it would be without the batch drawn ahead, inside the block: what a checkpoint saves,
        so a resumed run draws that batch first."""
        if self.drawn is None or self.before_drawn is None:
            yield
            return
        after = self.state.generator.get_state()
        self.state.generator.set_state(self.before_drawn)
        try:
            yield
        finally:
            self.state.generator.set_state(after)

    def put_back(self) -> None:
        """Forget the batch drawn ahead, as if it had not been drawn (the run ends here)."""
        if self.drawn is not None and self.before_drawn is not None:
            self.state.generator.set_state(self.before_drawn)
        self.drawn = None


@dataclass
class StepMetrics:
    """What one step measured, still on the device: reading it back makes the host wait (see readback_every)."""

    loss: torch.Tensor  # (): the batch's mean cross-entropy
    grad_norm: torch.Tensor  # (): the gradient's global norm, before clipping


def train_step(state: TrainState, batches: Batches) -> StepMetrics:
    """One optimizer step on one batch: forward, backward, clip, step. The learning rate is set before it."""
    cfg = state.config
    x, y = batches.next()  # (B, T) tokens and (B, T) targets: the same windows, one token further on
    with state.device.autocast():  # bf16 matmuls where the device is fast at them, else nothing changes
        _, loss = state.train_model(x, y)  # (B, T, V) logits -> the mean cross-entropy of every next-token guess
    batches.draw_ahead()  # on a GPU the next batch is cut while the device still works on this one
    loss.backward()  # every parameter's gradient of the loss
    max_norm = cfg.grad_clip if cfg.grad_clip > 0 else 1e30  # grad_clip 0: never clipped, but still measured
    grad_norm = nn.utils.clip_grad_norm_(state.model.parameters(), max_norm)
    for opt in state.optimizers:  # AdamW, and Muon for the hidden matrices
        opt.step()
    for opt in state.optimizers:
        opt.zero_grad(set_to_none=True)
    state.step += 1
    return StepMetrics(loss.detach(), grad_norm.detach())


def set_learning_rate(state: TrainState, factor: float) -> None:
    """Every parameter group at `factor` times its peak rate (engine.train.schedule.lr_factor)."""
    for opt in state.optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * factor


@dataclass
class Ends:
    """Reasons to end that each process sees on its own clock or request; under torchrun they must be agreed."""

    stop: bool  # a stop request (the Stop button, Ctrl-C, a heartbeat that timed out)
    over_time: bool  # the time budget is spent
    replan: bool  # the plan ended with more than a tenth of the budget left: plan again


def stop_requested(stop_event: threading.Event | None) -> bool:
    return stop_event is not None and stop_event.is_set()


def agree(state: TrainState, metrics: StepMetrics, ends: Ends, clock: list[bool]) -> tuple[float, Ends, list[bool]]:
    """The step's loss (averaged over ranks under torchrun), the `ends` every rank acts on (each raised if any
    rank raised it) and the `clock`'s answers (engine.train.intervals: rank 0's), in one collective: ranks taking
    different branches would wait in different collectives."""
    if not state.dist.enabled:
        return metrics.loss.item(), ends, clock
    loss, (stop, over_time, replan), clock = agree_step(metrics.loss, [ends.stop, ends.over_time, ends.replan],
                                                        clock, state.dist)
    return loss, Ends(stop, over_time, replan), clock


class ReadBack:
    """Records held back until their losses and gradient norms come back from the device, every `k` steps."""

    def __init__(self, k: int):
        self.k = k
        self.held: list[tuple[Record, StepMetrics]] = []

    def due(self, state: TrainState, budget: Budget, intervals: Intervals, ends: Ends) -> bool:
        """Read back now: every k steps, and wherever a decision needs the loss (an evaluation or a sample due by
        the step count, a re-plan, the planned end; alone, a reason to end). Under torchrun these step counts are
        the same on every rank, so all ranks meet in the same collective; what a clock says (a reason to end, an
        evaluation due by time) waits for the next of them, where it is agreed."""
        step = state.step
        return (self.k == 1 or step % self.k == 0 or intervals.step_due(step)
                or budget.replan_due(step) or budget.done(step)
                or (not state.dist.enabled and (ends.stop or ends.over_time or ends.replan)))

    def hold(self, record: Record, metrics: StepMetrics) -> None:
        self.held.append((record, metrics))

    def fill(self, state: TrainState) -> list[tuple[int, float]]:
        """Fill the held records' train_loss and grad_norm in one transfer (losses averaged over ranks under
        torchrun); returns (step, loss) of each, oldest first."""
        if not self.held:
            return []
        losses = torch.stack([m.loss.float() for _, m in self.held])  # (n,)
        norms = torch.stack([m.grad_norm.float() for _, m in self.held])  # (n,)
        if state.dist.enabled:
            losses = agree_mean(losses, state.dist)
        both = torch.stack([losses, norms]).tolist()  # the one host-device transfer
        for (record, _), loss, norm in zip(self.held, both[0], both[1], strict=True):
            record["train_loss"], record["grad_norm"] = loss, norm
        return [(record["step"], record["train_loss"]) for record, _ in self.held]

    def release(self, tokens_per_s: float | None, keep: bool = True) -> list[Record]:
        """The held records, complete, to publish (none unless `keep`: records counted in time); none held after."""
        records = [record for record, _ in self.held] if keep else []
        for record in records:
            record["tokens_per_s"] = record["tokens_per_s"] or tokens_per_s
        self.held.clear()
        return records


def first_divergence(losses: list[tuple[int, float]], ln_vocab: float) -> tuple[int, float] | None:
    """The first (step, loss) showing the run blew up: not a finite number, or (after step 1) far above the
    untrained model's loss, ln(vocab_size).

    >>> first_divergence([(1, 4.0), (2, 3.1), (3, float("nan"))], ln_vocab=4.17)
    (3, nan)
    >>> first_divergence([(1, 11.0), (2, 3.1)], ln_vocab=4.17) is None
    True
    """
    return next(((step, loss) for step, loss in losses
                 if not math.isfinite(loss) or (step > 1 and loss > 2 * ln_vocab + 2)), None)


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


def add_sample(state: TrainState, record: Record) -> None:
    """A text sample in the record (rank 0 only, no collective; a run that draws none: never)."""
    if state.dist.is_main and samples(state.config):
        record["sample"] = generate_sample(state)


def step_record(state: TrainState, budget: Budget, tokens_per_s: float | None) -> Record:
    """A step's record as the host knows it before the read-back (train_loss and grad_norm come then)."""
    return {"step": state.step, "train_loss": None, "val_loss": None, "lr": state.optimizers[0].param_groups[0]["lr"],
            "grad_norm": None, "tokens_per_s": tokens_per_s, "elapsed_s": state.elapsed_before + budget.elapsed(),
            "eta_s": budget.eta(state.step) if state.config.time_budget is not None else None,
            "tokens": state.tokens_before + (state.step - budget.start_step) * state.tokens_per_step}


def untrained_record(state: TrainState, evals: Evaluations) -> Record:
    """Step 0 of a fresh run: the untrained model, its validation loss near ln(vocab_size), its sample gibberish."""
    cfg = state.config
    record = {"step": 0, "train_loss": None, "val_loss": None, "lr": 0.0, "grad_norm": None, "tokens_per_s": None,
              "elapsed_s": 0.0, "eta_s": cfg.time_budget, "tokens": 0}
    evals.validate(record, cfg.eval_batches)
    record["train_loss"] = record["val_loss"]  # nothing trained yet: both splits look the same to the model
    add_sample(state, record)
    return record


@dataclass
class TrainOutcome:
    """How a run ended: status "finished", "stopped" or "diverged", a message for the learner, headline numbers."""

    status: str
    message: str
    summary: dict[str, Any]


def train_loop(
    state: TrainState,
    on_record: Callable[[Record], None] | None = None,
    stop_event: threading.Event | None = None,
    on_checkpoint: Callable[[TrainState, Record], None] | None = None,
) -> TrainOutcome:
    """Train until max_steps, the time budget, divergence, early stopping or `stop_event`; publish the records.

    `on_checkpoint(state, record)` is called after each published record of a healthy run (the job saves
    checkpoints with it), on every rank and for the same records, so it may run collectives; the generator it
    sees is where a resumed run must go on from (the batch drawn ahead put back).

    A record is a plain dict: step, train_loss (this step's batch), val_loss (None except at evaluations),
    lr, grad_norm, tokens_per_s, elapsed_s, eta_s, tokens; plus "val_loss_original" beside every val_loss when
    the run fine-tunes with its original corpus (state.original_data), "sample" (text) when one was generated, on
    the first record this call publishes "notes" (state.notes: what prepare changed, e.g. no torch.compile) if
    any, and on the last step "final": True and "train_eval_loss". Step 0 (a fresh run) is the untrained model.
    Every step's record is published, unless `record_every_s` counts them in time: then one at most that often,
    besides every evaluation, sample and the last step. On a GPU the records of the steps between read-backs are
    held back and published together, complete, at the read-back: every consumer sees the same records as on a
    CPU, in bursts of 16. Divergence is noticed there too.
    """
    cfg, publish = state.config, on_record or (lambda record: None)
    budget = Budget(state)
    evals = Evaluations(state, budget.deadline)
    notes_due = bool(state.notes)  # the first record this call publishes carries them

    def emit(record: Record) -> None:
        nonlocal notes_due
        if notes_due:
            record["notes"], notes_due = list(state.notes), False
        state.metrics.append(record)
        publish(record)

    if state.step == 0:
        emit(untrained_record(state, evals))
    intervals = Intervals(cfg, budget)  # from here: step 0's evaluation and sample done
    speed = Speed(state)
    ln_vocab = math.log(state.tokenizer.vocab_size)
    start_loss = state.metrics[0]["val_loss"] if state.metrics else ln_vocab
    early = EarlyStopping(cfg.early_stop_patience) if cfg.early_stop_patience else None
    readback = ReadBack(readback_every(cfg, state.device.type))
    batches = Batches(state, ahead=prefetches(state.device.type))
    status, message = RunStatus.FINISHED, ""
    while not budget.done(state.step):
        set_learning_rate(state, budget.lr_factor(state.step))
        metrics = train_step(state, batches)
        budget.note_step(state.step)
        reserve = evals.final_seconds(speed.slowdown)  # time kept for the end-of-run evaluation
        ends = Ends(stop_requested(stop_event), budget.over_time(reserve), budget.ran_out_early(state.step, reserve))
        record = step_record(state, budget, speed.tokens_per_s)
        if not readback.due(state, budget, intervals, ends):
            readback.hold(record, metrics)
            continue

        loss, ends, clock = agree(state, metrics, ends, intervals.clock())
        losses = [*readback.fill(state), (state.step, loss)]
        speed.measure(state.step)
        bad = first_divergence(losses, ln_vocab)
        if bad is not None:
            status, message = RunStatus.DIVERGED, divergence_message(bad[1], bad[0], cfg, start_loss)
        for held in readback.release(speed.tokens_per_s, keep=intervals.keeps_every_record()):
            emit(held)
        if budget.replan_due(state.step) or ends.replan:
            budget.replan(state, reserve)
        record.update(train_loss=loss, grad_norm=float(metrics.grad_norm), tokens_per_s=speed.tokens_per_s)
        diverged = bad is not None
        due = intervals.decide(state.step, clock)
        last = diverged or ends.stop or ends.over_time or budget.done(state.step)
        if last and not diverged:
            evals.final(record, thorough=not ends.stop)
        elif not diverged and due.evaluate:
            evals.validate(record, cfg.eval_batches)
            intervals.eval.happened(budget.elapsed())
            # the validation loss is agreed across ranks, so every rank stops early (or not) together
            if early is not None and early.update(state.step, record["val_loss"]):
                last, message = True, early.message(state.step, intervals.every())
                evals.finish(record)
        if not diverged and (last or due.sample):
            add_sample(state, record)
            intervals.sample.happened(budget.elapsed())
        if last or due.evaluate or due.sample or due.record:
            record.update(elapsed_s=state.elapsed_before + budget.elapsed(), eta_s=budget.eta(state.step, last))
            emit(record)
            intervals.record.happened(budget.elapsed())
            if on_checkpoint is not None and not diverged:
                with batches.as_if_not_drawn_ahead():
                    on_checkpoint(state, record)
        speed.restart(state.step)  # the next steps' time starts here: evaluations left out
        if last:
            status = RunStatus.STOPPED if ends.stop and not diverged else status
            break

    batches.put_back()
    summary = checkpoint.summarize_metrics(state.metrics)
    summary.update(params=state.model.num_params(), device=state.device.sentence, status=status, message=message)
    return TrainOutcome(status=status, message=message, summary=summary)
