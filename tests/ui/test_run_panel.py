"""The run panel and Resume: a save that failed mid-run shows while the run trains, and Resume continues on the
text the run trained on (rebuilt from its recorded corpus and cleaning) or refuses, on the page, and loses nothing."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from engine.extract import cleaning
from engine.extract.corpus import load_documents
from engine.runs import run_source
from engine.train.config import PRESETS
from tests.ui.conftest import poll_until, texts, widget_app

TRAIN_RUN = {"preset": "tiny", "use_learner_corpus": True, "show_diverge_button": False}


def _panel(status: str, save_warning: str | None) -> None:
    from ui.run_panel import draw_run, training_panel
    from ui.run_view import RunView

    records = [{"step": s, "train_loss": 4.0 - s / 100, "val_loss": 4.1 if s == 0 else None, "elapsed_s": s / 10}
               for s in range(41)]
    run = RunView("main", "r1", "/nonexistent", status, records, [], eta_s=30.0, save_warning=save_warning)
    draw_run(run, training_panel(65), "k")


def test_a_failed_mid_run_save_shows_while_the_run_trains() -> None:
    message = "could not save: disk full (runs/a) at step 40; the run keeps training and will try again later."
    at = AppTest.from_function(_panel, args=("running", message), default_timeout=60).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "**Checkpoint not saved.** Could not save: disk full (runs/a) at step 40; the run keeps training and will "
        "try again later."]
    assert not AppTest.from_function(_panel, args=("running", None), default_timeout=60).run().warning
    finished = AppTest.from_function(_panel, args=("finished", message), default_timeout=60).run()
    assert "Checkpoint not saved" not in texts(finished)  # the run's end says what happened to its saves


def _learner():
    from ui.session import store

    return store(), store().last_learner()


def _stopped_folder(run_dir: Path, steps: int = 3) -> Path:
    """A run that stopped with a checkpoint that reads: enough for the page to offer Resume."""
    run_dir.mkdir(parents=True)
    records = [{"step": s, "train_loss": 4.0, "val_loss": 4.1 if s == 0 else None, "elapsed_s": 0.1} for s in range(steps + 1)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "config.json").write_text(json.dumps({"train": PRESETS["tiny"].to_dict()}))
    (run_dir / "summary.json").write_text(json.dumps({"status": "stopped", "steps": steps,
                                                      "message": f"Stopped at step {steps}."}))
    torch.save({"model": {}, "step": steps}, run_dir / "ckpt.pt")
    return run_dir


def _refused(tmp_path: Path, corpus_id: str, recorded_text: str, title: str) -> tuple[AppTest, str]:
    """The learner's stopped run, whose folder records `corpus_id` and `recorded_text`, and a click on Resume."""
    from engine.runs.manager import get_manager
    from ui import run_view

    at = widget_app("train_run", TRAIN_RUN)
    store, learner = _learner()
    run_dir = _stopped_folder(tmp_path / "runs" / "old-run")
    run_source.record(run_dir, corpus_id, None, recorded_text, title=title)
    store.set_fact(learner.id, "run.main", {"run_id": "old", "run_dir": str(run_dir), "label": "lesson run"})
    at.run()
    at.button(key="harness-resume").click().run()
    assert not at.exception
    assert run_view.load(learner.id, "main").run_id == "old"  # nothing replaced: the run is as it was
    assert get_manager().list_runs() == [] and run_dir.joinpath("ckpt.pt").exists()
    assert "harness-resume" not in [b.key for b in at.button]  # no Resume that can only fail again
    return at, "\n".join(e.value for e in at.error)


def test_resume_refuses_when_the_upload_it_trained_on_is_gone(db, tmp_path: Path) -> None:
    at, error = _refused(tmp_path, "upload-my-notes-0123456789", "text from an upload since removed", "My notes")
    assert "“My notes”" in error and "no longer on the server" in error and "start a new run" in error
    assert not at.warning  # the stop message offered Resume: the refusal replaces it


def test_resume_refuses_when_the_corpus_now_gives_other_text(db, tmp_path: Path) -> None:
    _, error = _refused(tmp_path, "tinyshakespeare", "not the Shakespeare the course ships today", "Tiny Shakespeare")
    assert "has changed since" in error and "start a new run" in error


def test_resume_trains_on_the_runs_own_corpus_after_the_learner_picked_another(db, tmp_path: Path) -> None:
    """Trained on cleaned Shakespeare, then the learner picks Python code: Resume rebuilds the Shakespeare text
    (the code's characters would not even fit the checkpoint's tokenizer) and records the same source again."""
    from engine.runs.manager import RunManager
    from ui import run_view

    options = cleaning.suggested_options("prose")
    text = "\n\n".join(cleaning.clean(load_documents("tinyshakespeare"), options).docs)
    other_server = RunManager(max_concurrent=1, runs_root=tmp_path / "other", workers="thread")
    first = other_server.submit(replace(PRESETS["tiny"], max_steps=300), text, label="lesson run")
    while other_server.snapshot(first).step < 10:
        time.sleep(0.02)
    other_server.stop(first)
    saved = other_server.wait(first, timeout=30)
    recorded = run_source.record(saved.run_dir, "tinyshakespeare", asdict(options), text, title="Tiny Shakespeare")

    at = widget_app("train_run", TRAIN_RUN)
    store, learner = _learner()
    store.set_fact(learner.id, "run.main", {"run_id": first, "run_dir": saved.run_dir, "label": "lesson run"})
    store.set_fact(learner.id, "corpus.choice", "python_stdlib")
    at.run()
    assert "Python standard library" in texts(at)  # the page's own text is the code now
    at.button(key="harness-resume").click().run()
    assert not at.exception and not at.error
    run = run_view.load(learner.id, "main")
    assert run.live and run.run_id != first
    assert run_source.read(run.run_dir) == recorded  # the same corpus, cleaning and text, carried over
    at = poll_until(at, lambda a: run_view.load(learner.id, "main").step > saved.step, timeout=60)
    assert run_view.load(learner.id, "main").status in ("running", "finished")


def test_a_new_run_records_the_learners_corpus_and_cleaning(db) -> None:
    from ui import run_view

    at = widget_app("train_run", TRAIN_RUN)
    store, learner = _learner()
    store.set_fact(learner.id, "corpus.choice", "tinyshakespeare")
    at.run()
    at.button(key="harness-start").click().run()
    assert not at.exception
    source = run_source.read(run_view.load(learner.id, "main").run_dir)
    assert source.corpus_id == "tinyshakespeare" and source.title == "Tiny Shakespeare"
    assert source.cleaning == asdict(cleaning.suggested_options("prose"))
