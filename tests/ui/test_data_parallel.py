"""Lesson 9's data-parallel run: two runs of the learner's model, one process and two, side by side. The page tests'
run manager trains in threads, which cannot run a job of two processes (tests/engine/runs/test_data_parallel.py
trains a real one through the manager); here the two runs are folders written by hand, or tiny one-process runs
standing in for them, with what the button asked for recorded."""

from __future__ import annotations

import json
import time

import pytest

from engine.load import checkpoint
from engine.train.config import PRESETS
from tests.ui.conftest import no_errors, poll_until, texts, widget_app
from ui.widgets import data_parallel


def _folder(path, processes: int, step_tokens: int, losses: list[float], seconds: float) -> str:
    """A finished run's folder: an evaluation every 10 steps, `losses` at each."""
    metrics = [{"step": 10 * i, "tokens": 10 * i * step_tokens, "train_loss": v, "val_loss": v,
                "elapsed_s": seconds * i / (len(losses) - 1), "lr": 1e-3} for i, v in enumerate(losses)]
    device = ("Training on CPU, 2 processes x 1 thread" if processes == 2 else "Training on CPU, 2 threads")
    summary = {**checkpoint.summarize_metrics(metrics), "status": "finished", "message": "", "params": 600_000,
               "device": device, "processes": processes}
    checkpoint.write_run_files(path, {"train": {"batch_size": 32, "block_size": 64}, "device": device}, metrics,
                               summary)
    return str(path)


def _point(learner: int, run_key: str, run_dir: str) -> None:
    from ui.session import store

    store().set_fact(learner, f"run.{run_key}", {"run_id": run_key, "run_dir": run_dir, "created_at": time.time(),
                                                 "label": run_key})


def test_two_finished_runs_side_by_side(db, tmp_path):
    from ui.session import store

    at = widget_app("data_parallel")
    no_errors(at)
    assert "Nothing trained yet" in texts(at) and "**4,096 tokens**" in texts(at)
    learner = store().last_learner().id
    _point(learner, "ddp-1", _folder(tmp_path / "one", 1, 2048, [4.2, 3.0, 2.6], 20.0))
    _point(learner, "ddp-2", _folder(tmp_path / "two", 2, 4096, [4.2, 2.9, 2.5], 20.0))
    at.run()
    no_errors(at)
    shown = texts(at)
    assert "| Processes (ranks) | 1 | 2 |" in shown
    assert "| Tokens per step, all ranks | 2,048 | 4,096 |" in shown
    assert "| Tokens per second | 2,048 | 4,096 |" in shown  # 40,960 and 81,920 tokens in 20 s
    assert "| Validation loss at 40,960 tokens seen | 2.600 | 2.900 |" in shown  # the two-process run at its step 10
    assert "**2.00×** the tokens per second" in shown and "learned less" in shown
    assert "One process: Training on CPU, 2 threads" in shown
    assert "Two processes: Training on CPU, 2 processes x 1 thread" in shown
    assert "Why so little speed here" in shown and "**2.40 MB** of float32 gradients" in shown
    assert "What changes on GPUs" in shown and "NCCL" in shown and "NVLink" in shown
    spec = json.loads(at.get("echarts_chart")[-1].proto.spec)
    curves = {s["name"]: s["data"] for s in spec["series"]}
    assert curves["two processes"][-1] == [81920, 2.5] and curves["one process"][-1] == [40960, 2.6]
    assert spec["xAxis"]["name"] == "tokens seen"
    # one step of two ranks taken apart, on the reference model (the learner has no lesson-7 run)
    assert "split in two: **4** sequences for each rank" in shown and "float rounding" in shown
    assert "ring all-reduce" in shown


@pytest.fixture
def tiny_runs(monkeypatch):
    """Both runs train the tiny preset in the page tests' thread manager, as one process each; what the button asked
    for (processes, batch, config) is recorded."""
    from ui import run_view

    asked: list[dict] = []
    monkeypatch.setattr(data_parallel, "run_config", lambda params: PRESETS["tiny"].with_changes(max_steps=40))

    def submit(learner_id, run_key, config, text, label, processes, batch):
        asked.append({"key": run_key, "processes": processes, "batch": batch, "config": config})
        return run_view.start(learner_id, run_key, config, text, label=label, batch=batch)

    monkeypatch.setattr(data_parallel, "submit", submit)
    return asked


def test_the_button_trains_one_process_then_two(db, tiny_runs):
    at = widget_app("data_parallel")
    at.button(key="harness-start").click().run()
    no_errors(at)
    assert [(a["key"], a["processes"]) for a in tiny_runs] == [("ddp-1", 1), ("ddp-2", 2)]
    assert tiny_runs[0]["batch"] == tiny_runs[1]["batch"] == "ddp-ddp"  # one request: they wait as one
    assert tiny_runs[0]["config"] == tiny_runs[1]["config"]  # the same per-process batch and budget
    assert at.button(key="harness-start").disabled and not at.button(key="harness-stop").disabled
    poll_until(at, lambda a: "Why so little speed here" in texts(a), timeout=90)
    no_errors(at)
    shown = texts(at)
    assert "| Status | ✅ Finished | ✅ Finished |" in shown
    assert "| Steps | 40 | 40 |" in shown
    assert not at.button(key="harness-start").disabled
