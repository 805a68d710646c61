"""Numbers from the learner's own work that quiz questions can ask about (`answer_from` in a quiz file).

The training widget records which run is the learner's own (`main`) in the progress store; this module reads that
run (live, or from its folder after a restart) and turns it into the facts named in `course.widgets.LEARNER_FACTS`.
The too-high-learning-rate demo is a separate run (`diverge`) and never feeds these facts.
"""

from __future__ import annotations

import math

from engine.cost.catalogue import model as published_model
from engine.cost.flops import count_parameters
from engine.runs.snapshot import RunSnapshot
from engine.train.status import RunStatus
from ui import run_compute, run_view, session
from ui.learner_tokenizer import bpe_facts


def facts_from_losses(start: float | None, final: float | None) -> dict[str, float]:
    """The run's losses, and what lesson 7's quiz asks the learner to work out from them: the final validation loss
    in bits per character (nats ÷ ln 2) and as the number of equally likely characters it amounts to (e^loss).

    >>> facts = facts_from_losses(4.2, 2.0)
    >>> round(facts["run.final_val_bits"], 3), round(facts["run.final_val_choices"], 2), facts["run.val_loss_drop"]
    (2.885, 7.39, 2.2)
    """
    out: dict[str, float] = {}
    if start is not None:
        out["run.start_loss"] = float(start)
    if final is not None:
        out["run.final_val_loss"] = float(final)
        if math.isfinite(final) and 0 <= final < 700:  # e^loss stays a float
            out["run.final_val_bits"] = float(final) / math.log(2)
            out["run.final_val_choices"] = math.exp(float(final))
    if start is not None and final is not None:
        out["run.val_loss_drop"] = float(start) - float(final)
    return out


def dedup_facts(result: dict) -> dict[str, float]:
    """The learner's last deduplication (as the dedup lab saved it): what it removed, and the share of the corpus
    that is, which lesson 3's quiz asks the learner to work out from the lab's tiles.

    >>> dedup_facts({"removed": 1400, "near": 600, "documents": 5000})["dedup.removed_percent"]
    28.0
    """
    out = {"dedup.removed": float(result["removed"]), "dedup.near_removed": float(result["near"]),
           "corpus.documents": float(result["documents"])}
    if result["documents"]:
        out["dedup.removed_percent"] = 100.0 * result["removed"] / result["documents"]
    return out


def tokenizer_facts(bpe: dict[str, float]) -> dict[str, float]:
    """The learner's BPE facts, plus the loss a model on four times that vocabulary should start at, ln 4V, which
    lesson 4's quiz asks the learner to work out (ln V itself is on the lesson's card for the default 1,024).

    >>> round(tokenizer_facts({"bpe.vocab_size": 1024.0, "bpe.chars_per_token": 2.5})["bpe.start_loss_4x_vocab"], 3)
    8.318
    """
    out = dict(bpe)
    vocab = out.get("bpe.vocab_size")
    if vocab and vocab > 0:
        out["bpe.start_loss_4x_vocab"] = math.log(4 * vocab)
    return out


GPT3 = "gpt3_175b"  # data/published_models.yaml


def throughput_facts(run: RunSnapshot) -> dict[str, float]:
    """The run's training throughput in TFLOP/s (FLOPs per token x tokens per second, from its latest metrics
    record) and the years this machine would need at that rate for GPT-3's reported training compute."""
    rc = run_compute.compute(run)
    if rc is None or not rc.achieved_flops_per_s:
        return {}
    gpt3 = published_model(GPT3).training_flops
    out = {"run.achieved_tflops": rc.achieved_flops_per_s / 1e12}
    if gpt3 is not None:
        out["run.gpt3_years"] = run_compute.years_at(gpt3, rc.achieved_flops_per_s)
    return out


def checkpoint_facts(run: RunSnapshot) -> dict[str, float]:
    """The run's parameter count (the tied embedding once, as its checkpoint stores it) and the megabytes its
    weights take at 2 bytes each (bf16): lesson 10 asks the learner to work out the second from the first.

    >>> snap = RunSnapshot("r", "d", "finished", [], config={"n_layer": 2, "n_head": 2, "n_embd": 32,
    ...                    "block_size": 16}, params=26816)
    >>> checkpoint_facts(snap)
    {'run.parameters': 27328.0, 'run.bf16_mb': 0.054656}
    """
    config = run_compute.model_config(run)
    if config is None:
        return {}
    parameters = float(count_parameters(config).total)
    return {"run.parameters": parameters, "run.bf16_mb": parameters * 2 / 1e6}


def learner_facts(learner_id: int) -> dict[str, float]:
    facts: dict[str, float] = {}
    run = run_view.load(learner_id, "main")
    if run is not None and run.status not in (RunStatus.DIVERGED, RunStatus.FAILED):
        # Drop the final loss while the run is still going: the answer would move under the learner's feet.
        facts.update(facts_from_losses(run.start_val_loss, None if run.active else run.final_val_loss))
        if not run.active:  # the throughput settles only when the run has ended
            facts.update(throughput_facts(run))
    if run is not None:
        facts.update(checkpoint_facts(run))  # the model's size is fixed from its first step, diverged or not
    dedup = session.store().fact(learner_id, "dedup.result")
    if dedup:
        facts.update(dedup_facts(dedup))
    facts.update(tokenizer_facts(bpe_facts(learner_id)))
    return facts
