"""engine.train.rng: a run stopped and resumed trains exactly as it would have without stopping, dropout
included (the batches' generator and torch's own are both saved and put back), and older checkpoints resume."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.load.checkpoint import read_checkpoint, save_checkpoint
from engine.train.config import PRESETS
from engine.train.job import save_run
from engine.train.loop import train_loop
from engine.train.prepare import prepare

CONFIG = replace(PRESETS["tiny"].with_changes(dropout=0.1), max_steps=10)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[name], sb[name]) for name in sa)


def stopped_at(step: int, text: str, run_dir: Path, prefetch: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train CONFIG, stop it after `step` steps (as the Stop button does) and save it in `run_dir`."""
    import engine.train.loop

    monkeypatch.setattr(engine.train.loop, "prefetches", lambda device_type: prefetch)
    state, stop = prepare(CONFIG, text), threading.Event()
    outcome = train_loop(state, on_record=lambda r: stop.set() if r["step"] == step - 1 else None, stop_event=stop)
    assert outcome.status == "stopped" and state.step == step
    save_run(state, outcome, run_dir)


@pytest.mark.parametrize("prefetch", [False, True])  # True: a GPU's batch drawn ahead is put back first
def test_a_resumed_run_trains_as_if_it_had_never_stopped(small_text: str, tmp_path: Path, prefetch: bool,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    whole = prepare(CONFIG, small_text)
    train_loop(whole)
    stopped_at(4, small_text, tmp_path, prefetch, monkeypatch)
    resumed = prepare(CONFIG, small_text, resume_from=tmp_path)
    train_loop(resumed)
    assert resumed.step == whole.step == 10
    assert_same_weights(whole.model, resumed.model)  # the same batches and the same dropout masks


def test_a_checkpoint_holding_the_batch_generator_alone_still_resumes(small_text: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stopped_at(4, small_text, tmp_path, False, monkeypatch)
    old = read_checkpoint(tmp_path)
    old["rng"] = old["rng"]["ranks"][0]["batches"]  # as checkpoints were written before every rank's state
    save_checkpoint(tmp_path, old)
    resumed = prepare(CONFIG, small_text, resume_from=tmp_path)
    assert torch.equal(resumed.generator.get_state(), old["rng"])
    assert train_loop(resumed).status == "finished"
