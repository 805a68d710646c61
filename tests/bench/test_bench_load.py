"""The pure parts of the load benchmark (bench.load): the p95, the summary and its verdicts, the files it
writes, and the lost-answer count read from a progress database. No browser, no server."""

from __future__ import annotations

import json

from bench import load_summary
from bench.load import lost_answers
from bench.load_learner import lessons_by_number
from bench.load_summary import LearnerResult, markdown_rows, p95, summarise, write_summary
from course.loader import load_course
from course.progress import ProgressStore


def test_p95_is_the_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([0.3]) == 0.3
    assert p95([float(i) for i in range(1, 101)]) == 95.0  # 95 of 100 at or below it
    assert p95([0.1] * 19 + [9.0]) == 0.1  # one slow click in twenty is the top 5%
    assert p95([0.1] * 18 + [9.0, 9.0]) == 9.0  # two are not
    assert p95([3.0, 1.0, 2.0]) == 3.0  # unsorted input


def _summary(**kwargs):
    learners = kwargs.pop("learners", None) or [
        LearnerResult("a", clicks=[0.2, 0.4], answers=[("q", "1")], trained=True, saw_queue=False),
        LearnerResult("b", clicks=[0.3], answers=[("q", "1"), ("q", "2")], trained=True, saw_queue=True),
        LearnerResult("c", clicks=[0.5, 0.6]),
    ]
    args = dict(lost_answers=0, runs={"finished": 2}, peak_rss_mb=900.0, peak_children_rss_mb=400.0,
                peak_threads=40, mean_cpu=80.0, peak_cpu=190.0, wall_s=123.4)
    args.update(kwargs)
    return summarise(learners, **args)


def test_summary_counts_and_verdicts() -> None:
    s = _summary()
    assert (s["learners"], s["trainers"], s["clicks"], s["answers_submitted"]) == (3, 2, 5, 3)
    assert (s["runs_asked"], s["runs_trained"], s["runs_seen_queued"]) == (2, 2, 1)
    assert s["click_p95_s"] == 0.6 and s["click_max_s"] == 0.6
    assert all(s["targets"].values())
    assert s["browser_cpu_mean_percent"] is None  # not sampled here
    s = _summary(client_cpu=150.04, load=(8.04, 12.5))
    assert s["browser_cpu_mean_percent"] == 150.0 and s["load_average_mean_peak"] == [8.0, 12.5]
    assert "8.0 / 12.5" in dict(markdown_rows(s))[
        "machine load average (1 min), mean / peak, on 2 cores shared with other work"]


def test_each_missed_target_is_said() -> None:
    slow = [LearnerResult("a", clicks=[1.5] * 10, trained=False, error="TimeoutError: waited")]
    s = _summary(learners=slow, lost_answers=2, peak_rss_mb=2000.0)
    assert s["targets"] == {"zero_lost_answers": False, "p95_under_1s": False, "memory_under_1_5_gb": False,
                            "every_queued_run_trained": False}
    assert s["errors"] == ["a: TimeoutError: waited"]
    table = dict(markdown_rows(s))
    assert "**missed**" in table["answers submitted / lost from the store"]
    assert "**missed**" in table["server peak memory (RSS)"]
    assert "TimeoutError" in table["errors"]


def test_write_summary_writes_json_and_appends_a_section(tmp_path, monkeypatch) -> None:
    sections = []
    monkeypatch.setattr(load_summary, "append_section", lambda title, rows: sections.append((title, rows)))
    out = tmp_path / "docs" / "load.json"
    s = _summary()
    write_summary(s, out)
    assert json.loads(out.read_text()) == s
    assert len(sections) == 1 and sections[0][0].startswith("Load")
    write_summary(s, out, markdown=False)
    assert len(sections) == 1


def test_lost_answers_reads_the_store(tmp_path) -> None:
    db = tmp_path / "p.sqlite3"
    store = ProgressStore(db)
    a, b = store.get_or_create_learner("a"), store.get_or_create_learner("b")
    store.record_answer(a.id, "q", "1", 0, True)
    store.record_answer(b.id, "q", "1", 1, False)
    store.close()
    learners = [LearnerResult("a", answers=[("q", "1")]), LearnerResult("b", answers=[("q", "1"), ("q", "2")]),
                LearnerResult("nobody", answers=[("q", "1")])]
    assert lost_answers(db, learners) == 2  # b's second answer, and everything of a learner the store never saw


def test_the_learners_walk_the_lessons_the_course_loader_reads() -> None:
    lessons = lessons_by_number(load_course())
    assert sorted(lessons) == [entry.lesson.number for entry in load_course().entries if entry.ok]
    train = lessons[7].lesson
    assert any(c.widget is not None and c.widget.name == "train_run" for c in train.cards)
    assert lessons[1].quiz is not None and lessons[2].quiz is not None
