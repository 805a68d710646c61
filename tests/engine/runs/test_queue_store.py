"""The run queue's table on both databases a server may keep it in (a SQLite file, a class's PostgreSQL): rows come
back in the order they were asked for, each server (restarted or not) takes back only its own waiting runs when
several share the database, and a Ray run's row stays (without its text) once it trains, for any server to follow."""

from __future__ import annotations

from engine.runs.queue_store import QueueStore


def _job(text: str) -> dict:
    return {"config": {"max_steps": 3}, "text": text}


def test_two_servers_share_one_database_and_each_takes_back_its_own_queue(database_url: str) -> None:
    url = database_url
    one, two = QueueStore(url, server="a:8501"), QueueStore(url, server="a:8502")  # two course servers, one database
    for i, owner in enumerate(("ann", "bob", "cat")):
        one.add(f"run-{i}", owner, None, f"{owner}'s", f"/runs/{i}", _job(f"text {i}"))
    two.add("run-b", "dan", None, "dan's", "/runs/b", _job("text b"))
    assert [r.run_id for r in one.waiting()] == ["run-0", "run-1", "run-2"]  # in order, and not the other's
    assert [r.run_id for r in two.waiting()] == ["run-b"]
    assert [r.run_id for r in QueueStore(url, server="a:8501").waiting()] == ["run-0", "run-1", "run-2"]  # restarted
    assert two.find("run-1").job == {**_job("text 1"), "server": "a:8501"} and two.find("run-1").owner == "bob"
    two.ended("run-b")

    one.started("run-0", "ray")  # handed to Ray: followed again after a restart, its text no longer kept
    one.started("run-1", "process")  # a local run: its row goes
    assert [r.run_id for r in one.waiting()] == ["run-2"]
    attached = one.attached()
    assert [r.run_id for r in attached] == ["run-0"] and attached[0].job == {} and attached[0].backend == "ray"
    assert one.find("run-1") is None

    one.add("run-3", "ann", "compare", "ann's second", "/runs/3", _job("text 3"))
    assert [r.run_id for r in one.waiting()] == ["run-2", "run-3"]  # a new request sorts last
    two.ended("run-0")  # a Ray run is any server's to follow and to end
    assert one.attached() == []
    one.close()
    two.close()
