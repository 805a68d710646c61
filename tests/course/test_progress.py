"""Progress store: round trip, concurrent writers, reopen after close, on SQLite and on PostgreSQL (`database_url`,
tests/course/conftest.py); and a SQLite file's own cases: WAL mode, a missing folder, a corrupted file."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from course.progress import ProgressStore


@pytest.fixture
def store(database_url):
    s = ProgressStore(database_url)
    yield s
    s.close()


def test_round_trip(store):
    ada = store.get_or_create_learner("Ada")
    store.set_card(ada.id, "intro", 3)
    store.record_answer(ada.id, "q1", "pick", "b", False)
    store.record_answer(ada.id, "q1", "pick", "a", True)
    store.record_answer(ada.id, "q1", "think", "A long reflection.", None)
    store.mark_complete(ada.id, "intro")
    store.set_fact(ada.id, "run.summary", {"start_val_loss": 4.2})
    assert store.card(ada.id, "intro") == 3
    rec = store.quiz_records(ada.id, "q1")
    assert rec["pick"].attempts == 2 and rec["pick"].first_correct is False and rec["pick"].ever_correct is True
    assert rec["pick"].last.response == "a"
    assert rec["think"].first_correct is None and rec["think"].last.response == "A long reflection."
    assert store.completed(ada.id) == {"intro"}
    assert store.fact(ada.id, "run.summary") == {"start_val_loss": 4.2}
    exported = store.export(ada.id)
    assert exported["learner"] == "Ada" and len(exported["answers"]) == 3 and exported["positions"] == {"intro": 3}


def test_learners_are_separate_and_names_are_unique(store):
    ada = store.get_or_create_learner("Ada")
    assert store.get_or_create_learner("  ada ") == ada  # same name, any case or spacing
    bob = store.get_or_create_learner("Bob")
    store.set_card(ada.id, "intro", 2)
    assert store.card(bob.id, "intro") == 0
    assert [lr.name for lr in store.learners()] == ["Ada", "Bob"]
    with pytest.raises(ValueError):
        store.get_or_create_learner("   ")


def test_last_learner_follows_use(store):
    ada, bob = store.get_or_create_learner("Ada"), store.get_or_create_learner("Bob")
    store.touch_learner(bob.id)
    assert store.last_learner() == bob
    store.touch_learner(ada.id)
    assert store.last_learner() == ada


def test_two_threads_write_at_once(database_url):
    path = database_url
    learner = ProgressStore(path).get_or_create_learner("Ada")
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        s = ProgressStore(path)  # its own connection, as a second browser tab would have
        try:
            for i in range(100):
                s.record_answer(learner.id, "quiz", f"{tag}-{i}", i, True)
                s.set_card(learner.id, f"lesson-{tag}", i)
        except BaseException as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    fresh = ProgressStore(path)
    assert len(fresh.quiz_records(learner.id, "quiz")) == 200
    assert fresh.card(learner.id, "lesson-a") == 99 and fresh.card(learner.id, "lesson-b") == 99


def test_reopen_after_close_keeps_everything(database_url):
    s = ProgressStore(database_url)
    ada = s.get_or_create_learner("Ada")
    s.set_card(ada.id, "intro", 5)
    s.close()
    again = ProgressStore(database_url)
    assert again.card(ada.id, "intro") == 5
    if again.path is not None:
        assert sqlite3.connect(again.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_missing_file_and_folder_are_created(tmp_path):
    s = ProgressStore(tmp_path / "new" / "deeper" / "p.sqlite3")
    assert s.learners() == []
    assert (tmp_path / "new" / "deeper" / "p.sqlite3").exists()


def test_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_COURSE_DB", str(tmp_path / "env.sqlite3"))
    assert ProgressStore().path == tmp_path / "env.sqlite3"


def test_corrupted_file_is_kept_aside_not_deleted(tmp_path):
    path = tmp_path / "p.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes " * 50)
    s = ProgressStore(path)
    assert s.recovered_from is not None and s.recovered_from.exists()
    assert s.recovered_from.read_bytes().startswith(b"this is not a database")
    ada = s.get_or_create_learner("Ada")  # and the fresh store works
    assert s.learner(ada.id) == ada


def test_reset_forgets_progress_but_keeps_the_learner(store):
    ada = store.get_or_create_learner("Ada")
    store.set_card(ada.id, "intro", 2)
    store.record_answer(ada.id, "q", "a", 1, True)
    store.mark_complete(ada.id, "intro")
    store.reset(ada.id)
    assert store.positions(ada.id) == {} and store.quiz_records(ada.id, "q") == {} and store.completed(ada.id) == set()
    assert store.learner(ada.id) == ada


def test_answered_lists_each_question_once_per_learner(store):
    ada, bo = store.get_or_create_learner("Ada"), store.get_or_create_learner("Bo")
    store.record_answer(ada.id, "q1", "a", 1, False)
    store.record_answer(ada.id, "q1", "a", 2, True)  # a second try is still one answered question
    store.record_answer(ada.id, "q2", "r", "my thoughts", None)  # a reflection counts too
    store.record_answer(bo.id, "q1", "b", 0, True)
    assert store.answered(ada.id) == {("q1", "a"), ("q2", "r")}
    assert store.answered(bo.id) == {("q1", "b")}
    assert store.answered(999) == set()


def test_facts_with_prefix_lists_a_learners_runs(store):
    ada, bo = store.get_or_create_learner("Ada"), store.get_or_create_learner("Bo")
    store.set_fact(ada.id, "run.main", {"run_id": "a1"})
    store.set_fact(ada.id, "run.brand-new", {"run_id": "a2"})
    store.set_fact(ada.id, "runaway", 1)  # shares letters, not the prefix
    store.set_fact(ada.id, "corpus.choice", "web")
    store.set_fact(bo.id, "run.main", {"run_id": "b1"})
    store.set_fact(bo.id, "run_x", 2)  # "_" is a wildcard in LIKE, not here
    assert store.facts_with_prefix(ada.id, "run.") == {"run.brand-new": {"run_id": "a2"}, "run.main": {"run_id": "a1"}}
    assert store.facts_with_prefix(bo.id, "run.") == {"run.main": {"run_id": "b1"}}
    assert store.facts_with_prefix(bo.id, "run.x") == {}
    assert store.facts_of_everyone_with_prefix("run.") == [
        (ada.id, "run.brand-new", {"run_id": "a2"}), (ada.id, "run.main", {"run_id": "a1"}),
        (bo.id, "run.main", {"run_id": "b1"})]
