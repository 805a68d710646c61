"""The pages of a class's shared pool: every run is its learner's; a learner who holds as many runs as they may is
told so where they pressed Start, and nothing of theirs is replaced; a waiting run says its place in line, when it
should start and why it waits, on its panel and in the sidebar; listings read summaries, not histories.

The run manager is the page tests' own (one slot, runs in threads: tests/ui/conftest.py), with the default caps of
one run training and one request waiting per learner. Another learner's runs are submitted to it directly.
"""

from __future__ import annotations

import re
from dataclasses import replace

from engine.train.config import PRESETS
from paths import DEFAULT_CORPUS
from tests.ui.conftest import goto, new_app, no_errors, poll_until, texts, widget_app

ENDLESS = replace(PRESETS["tiny"], max_steps=1_000_000, sample_interval=0)  # trains until stopped
TIMED = replace(PRESETS["tiny"], max_steps=None, time_budget=60.0, sample_interval=0)  # holds its slot a minute
TEXT = DEFAULT_CORPUS.read_text(encoding="utf-8")[:20_000]
TRAIN_RUN = {"preset": "tiny", "use_learner_corpus": False, "show_diverge_button": False}


def _learner():
    from ui.session import store

    return store().last_learner()


def _wait_running(run_id: str) -> None:
    from engine.runs.manager import get_manager
    from tests.conftest import wait_until

    wait_until(lambda: get_manager().snapshot(run_id).status == "running", timeout=60, what=f"run {run_id} to start")


def test_a_learner_at_the_cap_is_told_where_they_pressed_start_and_nothing_is_replaced(db, run_manager):
    from ui import run_view

    at = widget_app("overfit_run", {"preset": "tiny"})
    learner = _learner()
    at.button(key="harness-start").click().run()  # an overfitting run of their own, which ends (60 steps)
    at = poll_until(at, lambda a: not run_view.load(learner.id, "overfit").active)
    first = run_view.load(learner.id, "overfit")
    assert first.status == "finished"

    training = run_view.start(learner.id, "main", ENDLESS, TEXT, "endless")  # one run training ...
    waiting = run_view.start(learner.id, "bpe", ENDLESS, TEXT, "waits")  # ... and one waiting: all they may hold
    assert training and waiting
    _wait_running(training)
    at.button(key="harness-start").click().run()
    no_errors(at)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and warnings[0].startswith("**Not started.** You already have a run training and "
                                                         "one waiting to start"), warnings
    assert "Wait for one to finish, or stop one, then try again." in warnings[0]
    assert run_view.load(learner.id, "overfit").run_id == first.run_id  # the card still shows their run
    assert "Lowest validation loss" in texts(at)
    assert {r.run_id for r in run_view.active_runs(learner.id)} == {training, waiting}
    assert len(run_manager.list_runs()) == 3  # nothing was submitted

    at.run()  # the notice answered that press; the next rerun draws the card as before
    assert not at.warning

    run_view.stop(run_view.load(learner.id, "bpe"))  # room again: the same button starts a run
    at.button(key="harness-start").click().run()
    no_errors(at)
    assert not at.warning and run_view.load(learner.id, "overfit").run_id != first.run_id


def test_runs_asked_for_together_count_as_one_request(db, run_manager):
    """Lesson 3's two runs join one request: with a run training already, both wait instead of the second being
    refused, and each says where it stands."""
    from ui import run_view

    at = widget_app("dedup_compare", {"preset": "tiny"})
    learner = _learner()
    training = run_view.start(learner.id, "main", ENDLESS, TEXT, "endless")
    _wait_running(training)
    at.button(key="harness-start").click().run()
    no_errors(at)
    assert not at.warning
    runs = [run_view.load(learner.id, key) for key in ("dedup-with", "dedup-without")]
    assert all(r is not None and r.status == "queued" for r in runs)
    labels = [m.label for m in at.metric]
    assert re.search(r"With duplicates: ⏳ waiting in line: 1st, starts in (a moment|about .+)", labels[0]), labels
    assert "Duplicates removed: ⏳ waiting in line: 2nd" in labels[1], labels


def test_a_waiting_run_says_its_place_when_it_starts_and_why(db, run_manager):
    from ui import run_view

    other = run_manager.submit(TIMED, TEXT, label="another learner's", owner="another learner")
    run_manager.submit(TIMED, TEXT, label="a third learner's", owner="a third learner")  # waits: first in line
    _wait_running(other)
    at = widget_app("train_run", TRAIN_RUN)
    learner = _learner()
    at.button(key="harness-start").click().run()
    no_errors(at)
    run = run_view.load(learner.id, "main")
    assert run.status == "queued" and run.queue_position == 2 and run.starts_in_s is not None
    assert 60 < run.starts_in_s < 140  # the run training (60 s), then the third learner's (60 s + starting)
    info = [i.value for i in at.info]
    assert len(info) == 1, info
    assert re.match(r"Waiting in line: \*\*2nd\*\*\. It should start in about [\d.]+ (s|minutes)\. ", info[0]), info
    assert info[0].endswith("Runs share this server, which trains one run at a time, and each learner has one run "
                            "training at a time.")


def test_the_sidebar_lists_a_waiting_run_with_its_place_and_estimate(db, run_manager, monkeypatch):
    """The sidebar reads a listing: each run's newest record only, asked for with its folder (a server on Ray
    follows a run it did not start); a panel that draws the chart gets the whole history."""
    from ui import run_view

    other = run_manager.submit(TIMED, TEXT, label="another learner's", owner="another learner")
    _wait_running(other)
    at = goto(new_app().run(), "lesson-1")
    learner = _learner()
    assert run_view.start(learner.id, "main", ENDLESS, TEXT, "waits") is not None
    asked: list[tuple[bool, str | None]] = []
    real = run_manager.snapshot
    monkeypatch.setattr(run_manager, "snapshot", lambda run_id, history=True, run_dir=None: (
        asked.append((history, run_dir)), real(run_id, history, run_dir))[1])
    at = poll_until(at, lambda a: any("waiting in line" in c.value for c in a.sidebar.caption))
    no_errors(at)
    caption = next(c.value for c in at.sidebar.caption if "waiting in line" in c.value)
    assert re.fullmatch(r"⏳ Your run is waiting in line: 1st, starts in (a moment|about [\d.]+ (s|minutes))\.",
                        caption), caption
    run_dir = run_view.load(learner.id, "main").run_dir
    assert asked[:-1] and set(asked[:-1]) == {(False, run_dir)}  # the sidebar's polls: summaries
    assert asked[-1] == (True, run_dir)  # run_view.load, just above: a panel's view, with its history


def test_a_listing_holds_the_newest_record_and_a_panel_the_whole_curve(db, run_manager):
    from tests.conftest import wait_until
    from ui import run_view

    new_app().run()
    learner = _learner()
    run_view.start(learner.id, "main", ENDLESS, TEXT, "endless")
    wait_until(lambda: run_view.load(learner.id, "main").step >= 5, timeout=60, what="five steps")
    listed = run_view.learner_runs(learner.id)
    assert [r.run_key for r in listed] == ["main"] and len(listed[0].metrics) == 1
    assert listed[0].metrics[0]["step"] >= 5
    assert len(run_view.load(learner.id, "main").metrics) >= 5


def test_pressing_start_again_at_the_cap_leaves_the_training_run_training(db, run_manager):
    """The run under a key is replaced only once its successor is in the queue: refused, it trains on."""
    from ui import run_view
    from ui.session import store

    learner = store().get_or_create_learner("Ada")
    training = run_view.start(learner.id, "main", ENDLESS, TEXT, "endless")
    waiting = run_view.start(learner.id, "bpe", ENDLESS, TEXT, "waits")
    _wait_running(training)
    assert run_view.start(learner.id, "main", ENDLESS, TEXT, "again") is None
    main = run_view.load(learner.id, "main")
    assert main.run_id == training and main.status == "running" and "one waiting" in run_view.queue_refusal("main")
    run_view.stop(run_view.load(learner.id, "bpe"))  # room again: pressing Start now replaces the run
    again = run_view.start(learner.id, "main", ENDLESS, TEXT, "again")
    assert again and again != training and run_view.load(learner.id, "main").run_id == again
    assert run_manager.snapshot(waiting).status == "stopped"
    for run_id in (training, again):
        run_manager.stop(run_id)
