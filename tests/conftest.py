"""What every test shares: one wait helper, and the `slow` and `browser` marks that `make check` selects by.

`make check` (the inner loop, about a minute) runs `-m "not slow and not browser"`; `make test` runs everything.
A test is marked here, not in its own file, by one rule each:

- `browser`: everything under tests/e2e (a real Chromium; those files also say so themselves);
- `slow`: every browser test, every AppTest page test (a tests/ui test that opens the app on a progress
  database: it asks for the `db` fixture), and the tests in SLOW below (each starts a process or trains for
  seconds). The run's summary names any unmarked test that took longer than SLOW_AFTER_S, so the list keeps up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

T = TypeVar("T")

# A developer's class settings never reach the tests: each test that wants PostgreSQL or Ray asks for its own.
for _var in ("LLM_COURSE_DATABASE_URL", "COURSE_DATABASE_URL"):
    os.environ.pop(_var, None)

# Node-id prefixes of the tests, outside tests/ui and tests/e2e, that take seconds: a training process, a CLI, a
# two-process DDP run, a real download-free model load, or a training run long enough to be timed.
SLOW = (
    "tests/engine/runs/",
    "tests/engine/train/test_ddp.py",
    "tests/engine/train/test_train.py::test_cli_",
    "tests/engine/train/test_train.py::test_a_short_timed_run",
    "tests/engine/train/test_train.py::test_a_slow_start",
    "tests/engine/train/test_train.py::test_a_timed_run_stopped",
    "tests/engine/train/test_train.py::test_early_stopping",
    "tests/engine/train/test_finetune.py::test_a_finetune_is_a_queued_run",
    "tests/engine/train/test_finetune.py::test_the_command_line",
    "tests/engine/load/test_checkpoint.py::test_sigterm",
    "tests/engine/load/test_checkpoint.py::test_a_crashed_worker",
    "tests/engine/load/test_checkpoint.py::test_a_long_run_timeline",
    "tests/engine/load/test_checkpoint.py::test_timeline_lists_and_loads",
    "tests/engine/load/test_reference.py::test_validation_loss",
    "tests/engine/load/test_quantize.py::test_the_reference_model_in_int8",
    "tests/engine/cost/test_peak.py",
    "tests/engine/cost/test_scaling.py::test_a_tiny_ladder",
    "tests/engine/look_inside/test_embeddings.py::test_benchmark_rows",
    "tests/engine/look_inside/test_inspection.py::test_bench_timings",
    "tests/engine/retrieve/test_retrieval_embedder.py::test_the_model_loads_offline",
    "tests/bench/test_bench.py::test_gpu_checks",
    "tests/bench/test_bench.py::test_python_m_",
    "tests/bench/test_bench.py::test_benchmarks_do_not_import",
    "tests/bench/test_class_sim.py::test_a_tiny_class",
)
SLOW_AFTER_S = 3.0  # an unmarked test slower than this on two busy cores belongs in SLOW


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A fresh, empty database's URL, once as a SQLite file and once as a PostgreSQL schema (tests/postgres.py):
    every store test runs on both databases the course supports."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'p.sqlite3'}"
        return
    from tests.postgres import postgres_schema

    with postgres_schema() as url:
        yield url


def wait_until(condition: Callable[[], T], timeout: float = 60.0, interval: float = 0.1,
               what: str | Callable[[], str] = "condition") -> T:
    """Call `condition` until it returns something truthy and return that; AssertionError after `timeout` seconds,
    saying `what` was awaited (a callable is asked at that moment, to describe what was last seen).

    The deadline is on the monotonic clock (a wall-clock step cannot cut a wait short or stretch it), and the
    condition is tried once more at the deadline, so a slow machine fails only when the thing never happened.
    """
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        if value := condition():
            return value
        if last_try:
            raise AssertionError(f"{what() if callable(what) else what}: not within {timeout:g} s")
        time.sleep(interval)


def _slow(item: pytest.Item) -> bool:
    nodeid = item.nodeid
    if nodeid.startswith("tests/e2e/"):
        return True
    if nodeid.startswith("tests/ui/") and "db" in getattr(item, "fixturenames", ()):
        return True
    return nodeid.startswith(SLOW)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith("tests/e2e/"):
            item.add_marker(pytest.mark.browser)
        if _slow(item):
            item.add_marker(pytest.mark.slow)


# Browser tests that start servers of their own (a killed and restarted server, a class server with its identity
# provider): they need a Chromium but not the shared server, so they form a second unit that the other worker runs.
OWN_SERVERS = ("tests/e2e/test_journey.py", "tests/e2e/test_run_survives_server_kill.py",
               "tests/e2e/test_two_servers_browser.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under `pytest -n 3 --dist loadgroup` (`make test`) the browser tests go to the workers as two units, in file
    order: those on the one shared server (one Chromium and one server serve them all), and those that start servers
    of their own (OWN_SERVERS, about as long in all). They are the biggest units, so each worker starts with one of
    them, and the other tests are shared out one at a time to whichever worker is free. pytest-xdist's own
    `xdist_group` mark would say the same, but 3.8 renames the test ids it groups by through an attribute pytest 9
    no longer reads."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BrowserTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(OWN_SERVERS):
                return "browser, own servers"
            return "browser" if nodeid.startswith("tests/e2e/") else nodeid

    return BrowserTestsTogether(config, log)


NICE_BESIDE_BROWSER = 10  # the CPU priority (niceness) of the other tests while a worker runs the browser tests


def pytest_runtest_setup(item: pytest.Item) -> None:
    """In an xdist worker, a test that is not a browser test runs at a lower CPU priority, and so do the training
    processes it starts (they inherit it). The browser tests are the run's longest chain and each of their clicks
    waits on a server and a browser that need the CPU at that moment; the other tests only need it some time (on two
    cores, 383 s without this and 344-366 s with it: docs/benchmarks.md). In file order the run manager's process
    tests, whose waits are the shortest, come while the browser tests are on pages that train nothing. Priority
    never rises again: a worker takes its browser tests before anything else."""
    if "PYTEST_XDIST_WORKER" in os.environ and "browser" not in item.keywords:
        if os.getpriority(os.PRIO_PROCESS, 0) < NICE_BESIDE_BROWSER:
            os.setpriority(os.PRIO_PROCESS, 0, NICE_BESIDE_BROWSER)
