"""Class mode in AppTest (the sign-in itself, through a real identity provider and Chromium, is
tests/e2e/test_two_servers_browser.py): nothing but the sign-in page before sign-in, identity from the claims alone,
instructor pages for instructors only, the instructor's tables from the class's answers, and deleting a learner's
data."""

from __future__ import annotations

import json

import pytest

from course.loader import load_course
from course.progress import ProgressStore
from tests.ui.conftest import goto, new_app, texts
from ui.text import escape_md

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "course",
        "client_secret": "secret", "server_metadata_url": "http://127.0.0.1:9400/.well-known/openid-configuration"}
COURSE = {"instructors": ["prof@example.edu"]}
ANN = {"is_logged_in": True, "sub": "ann", "email": "ann@example.edu", "name": "Ann"}
PROF = {"is_logged_in": True, "sub": "prof", "email": "prof@example.edu", "name": "Prof"}


def class_app(user: dict | None):
    at = new_app()
    at.secrets["auth"] = AUTH
    at.secrets["course"] = COURSE
    at.user = user if user is not None else {"is_logged_in": False}
    return at


def test_before_sign_in_only_the_sign_in_page_shows_and_no_profile_is_made(db) -> None:
    at = class_app(None).run()
    assert not at.exception
    assert at.button(key="auth-login").label == "Log in"
    assert "sidebar-learner" not in [w.key for w in at.selectbox]
    assert "Welcome" not in texts(at)
    goto(at, "lesson-2")  # a lesson's address shows the sign-in page too
    assert at.button(key="auth-login") and "How LLMs are trained" not in [t.value for t in at.title][1:]
    assert ProgressStore(db).members() == []


def test_a_signed_in_learner_is_who_the_claims_say_with_no_picker(db) -> None:
    at = class_app(ANN).run()
    assert not at.exception
    assert "Ann" in texts(at) and escape_md("ann@example.edu") in texts(at)
    assert not [w for w in at.selectbox if w.key == "sidebar-learner"]  # no profile picker
    at.session_state["learner_id"] = 999  # a forged session value changes nothing: identity is the sign-in's
    at.run()
    members = ProgressStore(db).members()
    assert [(m.name, m.email, m.signed_in) for m in members] == [("Ann", "ann@example.edu", True)]
    assert at.session_state["learner_id"] == members[0].id
    goto(at, "class-roster")  # an instructor's page is not registered for a learner
    assert "Class roster" not in [t.value for t in at.title]


def test_an_instructor_sees_the_class(db) -> None:
    store = ProgressStore(db)
    course = load_course()
    entry = course.entry("big-picture")
    q = next(q for q in entry.quiz.questions if q.id == "where-knowledge-ends-up")
    wrong = next(o for o in q.options if o.id != q.answer)
    for sub in ("ann", "bo"):
        me = store.signed_in_learner(sub, f"{sub}@example.edu", sub.title())
        store.set_card(me.id, entry.lesson.id, 2)
        store.record_answer(me.id, entry.quiz.id, q.id, wrong.id, False)
        store.record_answer(me.id, entry.quiz.id, q.id, q.answer, True)
        store.record_answer(me.id, entry.quiz.id, "your-own-pipeline", f"{sub} reflects <b>here</b>.", None)
    at = class_app(PROF).run()
    assert not at.exception and "Instructor" in texts(at)
    goto(at, "class-roster")
    assert not at.exception and "Class roster" in [t.value for t in at.title]
    roster = at.dataframe[0].value
    assert sorted(roster["Learner"]) == ["Ann", "Bo"]  # the instructor is not a learner of the roster
    assert set(roster["Current lesson"]) == {"1. The big picture"} or all(v.startswith("1. ") for v in roster["Current lesson"])
    goto(at, "class-questions")
    assert not at.exception
    table = at.dataframe[0].value
    assert table["Question"][0] == q.prompt and table["Right first try"][0] == 0
    assert f"{wrong.text} (x2)" in table["Most common wrong answers"][0]
    goto(at, "class-reflections")
    assert not at.exception
    assert [t.value for t in at.text] == ["ann reflects <b>here</b>.", "bo reflects <b>here</b>."]
    goto(at, "class-runs")
    assert not at.exception and "The class's runs" in [t.value for t in at.title]


@pytest.mark.parametrize("who", ["learner", "instructor"])
def test_deleting_a_learners_data_takes_theirs_and_nothing_else(db, who: str) -> None:
    store = ProgressStore(db)
    ann = store.signed_in_learner("ann", "ann@example.edu", "Ann")
    bo = store.signed_in_learner("bo", "bo@example.edu", "Bo")
    for me in (ann, bo):
        store.record_answer(me.id, "big-picture-quiz", "your-own-pipeline", "words", None)
        store.mark_complete(me.id, "big-picture")
    if who == "learner":
        at = class_app(ANN).run()
        goto(at, "progress")
        at.button(key="learner-data-delete").click().run()
    else:
        at = class_app(PROF).run()
        goto(at, "class-roster")
        at.selectbox(key="learner-data-who").set_value(ann.id).run()
        at.checkbox(key="learner-data-confirm").check().run()
        at.button(key="learner-data-delete-other").click().run()
    assert not at.exception
    after = ProgressStore(db)
    assert after.export(bo.id)["answers"] and after.completed(bo.id) == {"big-picture"}  # Bo's untouched
    if who == "instructor":
        assert after.learner(ann.id) is None and "Deleted" in texts(at)
    else:  # Ann is still signed in: she comes back as a fresh, empty learner
        assert after.export(ann.id)["answers"] == [] if after.learner(ann.id) else True
        assert not any(m.name == "Ann" and after.export(m.id)["answers"] for m in after.members())


def _lesson_run(folder, budget: float, losses: list[float], text_sha: str) -> str:
    """A finished lesson-7 run's folder as the engine leaves it (config, metrics, summary, source)."""
    from engine.train.config import PRESETS

    preset = PRESETS["lesson"]
    folder.mkdir(parents=True)
    train = {**preset.to_dict(), "time_budget": budget, "n_layer": 4}
    model = {**{k: v for k, v in train.items() if k in ("n_layer", "n_head", "n_embd", "block_size")}, "vocab_size": 65}
    (folder / "config.json").write_text(json.dumps({"train": train, "model": model, "device": "Training on CPU",
                                                    "params": 9}))
    records = [{"step": 10 * i, "train_loss": loss, "val_loss": loss} for i, loss in enumerate(losses)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "summary.json").write_text(json.dumps({"status": "finished", "message": "", "steps": 10 * len(losses),
                                                     "final_val_loss": losses[-1]}))
    (folder / "source.json").write_text(json.dumps({"corpus_id": "tinyshakespeare", "cleaning": None,
                                                    "sha256": text_sha, "chars": 1}))
    return str(folder)


def test_the_leaderboard_ranks_only_runs_made_by_the_lessons_rules(db, tmp_path) -> None:
    from engine.extract.corpus import content_hash, load_corpus

    sha = content_hash(load_corpus("tinyshakespeare"))
    store = ProgressStore(db)
    runs = {"ann": (60, [4.1, 2.2, 2.0]), "bo": (120, [4.1, 1.5]), "cy": (60, [4.1, 1.9, 1.8]), "di": (60, [4.2, 1.7])}
    for sub, (budget, losses) in runs.items():
        me = store.signed_in_learner(sub, f"{sub}@example.edu", sub.title())
        folder = _lesson_run(tmp_path / "runs" / sub, budget, losses, sha if sub != "di" else "0" * 64)
        store.set_fact(me.id, "run.main", {"run_id": f"id-{sub}", "run_dir": folder, "label": f"{sub} lesson run"})
    at = goto(class_app(PROF).run(), "class-runs")
    assert not at.exception
    board = at.dataframe[0].value
    assert list(board["Learner"]) == ["Cy", "Ann"] and list(board["Best validation loss"]) == [1.8, 2.0]
    unranked = dict(zip(at.dataframe[1].value["Learner"], at.dataframe[1].value["Why"], strict=True))
    assert unranked == {"Bo": "a 120 s budget, not 60 s", "Di": "another text than the lesson's"}
    assert "60 s time budget" in texts(at)  # the rules are stated on the page
    assert at.selectbox(key="class-runs-card").options[:2] == ["Cy: cy lesson run", "Ann: ann lesson run"]
