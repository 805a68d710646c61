"""Lesson 7's live training widget: start a tiny run, poll it, leave and come back, the divergence demo."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

from course.loader import load_course
from course.widgets import TrainRunParams
from engine.train.config import PRESETS
from paths import DEFAULT_CORPUS
from tests.ui.conftest import goto, new_app, texts
from tests.ui.conftest import poll_until as _poll_until
from ui.widgets.train_run import build_config, diverge_config

LESSON7 = "training-loop"


def _to_training_card(at):
    lesson = load_course().entry(LESSON7).lesson
    index = next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == "train_run")
    for _ in range(index):
        at.button(key=f"lesson-{LESSON7}-next").click().run()
    return f"{LESSON7}-{lesson.cards[index].id}", lesson.cards[index]


def _numbers(at) -> str:
    """The live panel's headline line (step, validation loss, tokens/s, time left)."""
    return next((m.value for m in at.markdown if m.value.startswith("Step **")), "")


def _chart(at) -> dict:
    """The loss chart's ECharts option, as the browser would receive it."""
    charts = at.get("echarts_chart")
    assert charts, "no loss chart on the page"
    return json.loads(charts[-1].proto.spec)


def test_config_from_knobs():
    params = TrainRunParams()
    cfg = build_config(params, "lesson", n_layer=2, n_embd=64, lr=1e-3, budget=30)
    assert (cfg.model.n_layer, cfg.model.n_embd, cfg.lr, cfg.time_budget) == (2, 64, 1e-3, 30.0)
    assert cfg.eval_interval <= 50  # enough validation points to draw a curve
    assert cfg.muon_lr == PRESETS["lesson"].muon_lr * 1e-3 / PRESETS["lesson"].lr
    tiny = build_config(params, "tiny", 1, 32, 1e-2, 30)
    assert tiny.max_steps == PRESETS["tiny"].max_steps and tiny.time_budget is None
    bad = diverge_config("tiny")
    assert bad.lr > 1 and bad.grad_clip == 0 and bad.optimizer == "adamw"


def test_start_a_tiny_run_watch_it_and_come_back(db):
    at = goto(new_app().run(), "lesson-7")
    key, card = _to_training_card(at)
    assert not at.exception
    assert card.after not in texts(at)  # the results discussion waits until the learner has a run
    at.button_group(key=f"{key}-preset").set_value("tiny").run()
    at.button(key=f"{key}-start").click().run()
    assert not at.exception
    at = _poll_until(at, lambda a: a.get("echarts_chart") and "validation loss **" in _numbers(a))
    spec = _chart(at)
    assert [s["name"] for s in spec["series"]] == ["training loss (each step's own batch)", "validation loss"]
    lines = spec["series"][0]["markLine"]["data"]  # random guessing, then the counting models to beat
    assert [line["label"]["formatter"].split(":")[0] for line in lines] == [
        "random guessing", "character counts", "character pairs"]
    guess, counts, pairs = (line["yAxis"] for line in lines)
    assert guess > counts > pairs > 0
    assert spec["series"][1]["data"][0][0] == 0 and abs(spec["series"][1]["data"][0][1] - guess) < 0.5
    at = _poll_until(at, lambda a: any("Finished" in c.value for c in a.caption), timeout=120)
    shown = texts(at)
    assert "What the model writes at step" in shown
    assert card.after.split("\n")[0][:40] in shown  # revealed now
    tiles = {m.label: m for m in at.metric}  # an ended run: its results as tiles, drawn once
    assert re.fullmatch(r"[\d,]+", tiles["Tokens / second"].value) and int(tiles["Steps"].value) == PRESETS["tiny"].max_steps
    assert tiles["Validation loss"].delta.endswith("since step 0") and tiles["Validation loss"].delta.startswith("-")

    # Leave for another page and come back: the same run is shown, not a new one.
    at = goto(at, "home")
    at = goto(at, "lesson-7")
    assert any("Finished" in c.value for c in at.caption)
    assert _chart(at)["series"][1]["data"]


def test_quiz_question_about_the_learners_own_run(db):
    at = goto(new_app().run(), "lesson-7")
    key, _ = _to_training_card(at)
    at.button_group(key=f"{key}-preset").set_value("tiny").run()
    at.button(key=f"{key}-start").click().run()
    _poll_until(at, lambda a: any("Finished" in c.value for c in a.caption), timeout=120)

    from ui.run_view import load
    from ui.session import store

    learner = store().last_learner()
    run = load(learner.id, "main")
    assert run.status == "finished" and run.start_val_loss is not None

    entry = load_course().entry(LESSON7)
    q = next(q for q in entry.quiz.questions if getattr(q, "answer_from", None) == "run.start_loss")
    while any(b.key == f"lesson-{LESSON7}-next" for b in at.button):
        at.button(key=f"lesson-{LESSON7}-next").click().run()
    at.button(key=f"lesson-{LESSON7}-to-quiz").click().run()
    qkey = f"quiz-{entry.quiz.id}-{q.id}"
    at.text_input(key=qkey).input(f"{run.start_val_loss:.3f}").run()
    at.button(key=f"{qkey}-check").click().run()
    assert not at.exception
    assert any(e.value == "Correct!" for e in at.success)


def test_divergence_demo_diverges_and_explains(db):
    at = goto(new_app().run(), "lesson-7")
    key, _ = _to_training_card(at)
    at.button_group(key=f"{key}-preset").set_value("tiny").run()
    at.button(key=f"{key}-diverge").click().run()
    assert at.button(key=f"{key}-diverge").disabled, "no second demo while one trains"
    at = _poll_until(at, lambda a: any("learning rate is too high" in e.value for e in a.error))
    assert not at.exception
    assert not at.button(key=f"{key}-diverge").disabled, "ended: the demo can be run again"
    from ui.facts import learner_facts
    from ui.session import store

    assert "run.start_loss" not in learner_facts(store().last_learner().id)  # the demo never feeds the quiz
    assert _chart(at)["yAxis"]["type"] == "log"  # the explosion is drawn, not clipped


def test_the_sidebar_lists_a_run_only_where_the_page_does_not_show_it(db):
    """A page that polls a run in a live panel of its own leaves it out of the sidebar (one poll, not two); every
    other page lists it in the sidebar, which is also what keeps its heartbeat going there."""
    from engine.runs.manager import get_manager
    from ui import run_view
    from ui.session import store

    at = goto(new_app().run(), "lesson-7")
    _to_training_card(at)
    learner = store().last_learner()
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
    run_id = run_view.start(learner.id, "main", replace(PRESETS["tiny"], max_steps=1_000_000), text, "endless")
    try:
        at = _poll_until(at, lambda a: "Step **" in _numbers(a))  # the page shows it itself ...
        assert not any("Training your run" in c.value for c in at.sidebar.caption)  # ... so the sidebar does not

        at = goto(at, "lesson-1")
        at = _poll_until(at, lambda a: any("🟢 Training your run: step" in c.value for c in a.sidebar.caption))
    finally:
        get_manager().stop(run_id)
        get_manager().wait(run_id, timeout=30)
    at.run()
    assert not any("Training your run" in c.value for c in at.sidebar.caption)  # nothing left to poll


def test_after_a_server_restart_an_interrupted_run_shows_and_resumes(db, tmp_path):
    """A run whose server was killed mid-run (its folder still says "running") is shown as interrupted, from its
    folder, with a Resume button that continues it from its checkpoint under the same run key."""
    from engine.runs.manager import RunManager
    from ui import run_view
    from ui.session import store

    text = DEFAULT_CORPUS.read_text(encoding="utf-8")  # what the page trains on, so the checkpoint's tokenizer fits
    other_server = RunManager(max_concurrent=1, runs_root=tmp_path, workers="thread")
    first = other_server.submit(replace(PRESETS["tiny"], max_steps=300), text, label="Guest lesson run")
    while other_server.snapshot(first).step < 10:
        time.sleep(0.02)
    other_server.stop(first)
    saved = other_server.wait(first, timeout=30)
    summary_path = tmp_path.joinpath(saved.run_dir, "summary.json")
    summary = json.loads(summary_path.read_text())
    summary_path.write_text(json.dumps({**summary, "status": "running", "message": ""}))  # as if killed mid-run

    at = goto(new_app().run(), "lesson-7")
    key, _ = _to_training_card(at)
    learner = store().last_learner()
    store().set_fact(learner.id, "run.main", {"run_id": first, "run_dir": saved.run_dir, "label": "Guest lesson run"})
    at.run()
    assert not at.exception
    assert any("⚠️ Interrupted" in c.value for c in at.caption)
    assert any(f"checkpoint from step {saved.step:,} is saved" in w.value for w in at.warning)
    at.button(key=f"{key}-resume").click().run()
    assert not at.exception
    run = run_view.load(learner.id, "main")
    assert run.live and run.run_id != first and run.label == "Guest lesson run"
    at = _poll_until(at, lambda a: any("Finished" in c.value for c in a.caption), timeout=120)
    run = run_view.load(learner.id, "main")
    steps = [r["step"] for r in run.metrics]
    assert steps[: saved.step + 1] == list(range(saved.step + 1))  # the saved history, then on from there
    assert run.step > saved.step and run.config["n_layer"] == PRESETS["tiny"].model.n_layer


def test_the_knobs_come_back_at_the_settings_of_the_run_beside_them():
    """A learner who returns sees their run's own settings, not the preset's 60 s beside a run that trained 10 s."""
    from course.widgets import TrainRunParams
    from engine.runs.snapshot import RunSnapshot
    from ui.widgets.train_run import knob_start

    lesson = PRESETS["lesson"]
    ran = RunSnapshot("r", "d", "finished", [], config={**lesson.to_dict(), "n_layer": 2, "n_embd": 64,
                                                             "lr": 1e-3, "time_budget": 10.0})
    assert knob_start(TrainRunParams(), lesson, ran) == (2, 64, 1e-3, 10)
    resumed = RunSnapshot("r", "d", "stopped", [], config={**lesson.to_dict(), "time_budget": 38.5})
    assert knob_start(TrainRunParams(), lesson, resumed)[3] == 40  # the slider's 5 s steps
    tiny_run = RunSnapshot("r", "d", "finished", [], config=PRESETS["tiny"].to_dict())
    assert knob_start(TrainRunParams(), lesson, tiny_run) == (3, 128, lesson.lr, 60)  # another kind of run
