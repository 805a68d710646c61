"""Profiles in the progress store: whatever one learner does, another learner's progress reads back exactly as it
was (property-based: random sequences of writes by two learners against a model of what each should hold), and no
name can make a profile that looks like someone else's. On SQLite and on PostgreSQL (`database_url`)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course.progress import ProgressStore

IDS = st.sampled_from(["intro", "tokens", "a_b", "50%", "x'; DROP TABLE answers; --", "run.", ""])
VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.lists(st.integers(), max_size=3)
OPS = st.one_of(
    st.tuples(st.just("card"), IDS, st.integers(0, 30)),
    st.tuples(st.just("answer"), IDS, IDS, VALUES, st.none() | st.booleans()),
    st.tuples(st.just("complete"), IDS),
    st.tuples(st.just("fact"), IDS, VALUES),
    st.tuples(st.just("reset")),
)


def _apply(store: ProgressStore, learner_id: int, op: tuple) -> None:
    kind, *args = op
    if kind == "card":
        store.set_card(learner_id, *args)
    elif kind == "answer":
        store.record_answer(learner_id, *args)
    elif kind == "complete":
        store.mark_complete(learner_id, *args)
    elif kind == "fact":
        store.set_fact(learner_id, *args)
    else:
        store.reset(learner_id)


def _view(store: ProgressStore, learner_id: int) -> dict:
    out = store.export(learner_id)
    out.pop("exported_at")
    for a in out["answers"]:
        a.pop("at")
    quizzes = {a["quiz"] for a in out["answers"]}
    out["records"] = {q: store.quiz_records(learner_id, q) for q in sorted(quizzes)}
    out["run_facts"] = store.facts_with_prefix(learner_id, "run.")
    return out


_EXAMPLE = itertools.count()


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), OPS), max_size=12))
def test_one_learners_writes_never_reach_another(database_url, steps):
    store = ProgressStore(database_url)
    n = next(_EXAMPLE)  # each example's own two learners, in the one database of this test
    ada, bob = store.get_or_create_learner(f"Ada {n}"), store.get_or_create_learner(f"Bob {n}")
    store.set_fact(bob.id, "run.main", {"id": "bob-run"})
    store.record_answer(bob.id, "intro", "q1", "Bob's own words", None)
    before = _view(store, bob.id)
    for _, op in steps:
        _apply(store, ada.id, op)  # every write goes to Ada
        assert _view(store, bob.id) == before, op
    for to_bob, op in steps:  # and the other way round, Ada's state must stay what her own writes made it
        if to_bob:
            ada_now = _view(store, ada.id)
            _apply(store, bob.id, op)
            assert _view(store, ada.id) == ada_now, op
    store.close()


@pytest.mark.parametrize("name", ["Ada\u200b", "A\u202eda", "Ada\x00", "Ada\x07", "\u2060Ada", "Ada\ufeff"])
def test_names_with_hidden_characters_are_refused(database_url, name):
    store = ProgressStore(database_url)
    store.get_or_create_learner("Ada")
    with pytest.raises(ValueError, match="invisible or control characters"):
        store.get_or_create_learner(name)
    assert [lr.name for lr in store.learners()] == ["Ada"]


@pytest.mark.parametrize("name", ["Ａｄａ", "  ada ", "ADA", "Ada\t", "Ada\n"])
def test_names_that_look_the_same_are_the_same_profile(database_url, name):
    store = ProgressStore(database_url)
    ada = store.get_or_create_learner("Ada")
    assert store.get_or_create_learner(name) == ada


def test_markup_in_a_name_is_kept_as_typed(database_url):
    store = ProgressStore(database_url)
    name = "<img src=x onerror=alert(1)>"[:40]
    assert store.get_or_create_learner(name).name == name
