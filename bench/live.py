"""How much does watching a run cost it? `python -m bench live` appends the answer to docs/benchmarks.md.

The target: the live page slows training by at most about 10% compared with the command line. On a 2-core
machine the browser, the course server and the training share the same cores, so this measures all three at once,
in Debian's Chromium, headless and without a GPU (the worst case: a learner's browser usually has a GPU and more
cores).

The `lesson` preset runs from `python -m engine.train` (with lesson 7's page open and idle) and the same run is
started from the page while Chromium watches it, `reps` pairs in alternating order; the figure is the median of the
paired ratios. This machine's own speed drifts from minute to minute (other work on its host; docs/training-notes.md),
so one pair proves little and the pairs are interleaved. The CPU each party (browser, course server, training
process) used while the page trained is recorded too: it is the steadier measure of what the page takes.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paths
from course.loader import load_course
from course.progress import ProgressStore

ROOT = paths.ROOT
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 if it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _descendants(pid: int) -> dict[int, str]:
    """{pid: command line} of every process below `pid`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, p in parents.items():
            if p == parent and child not in found:
                try:
                    found[child] = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
                except OSError:
                    found[child] = ""
                frontier.append(child)
    return found


def _party(cmdline: str) -> str:
    if "engine.runs.worker" in cmdline:
        return "training process"
    if "streamlit" in cmdline:
        return "course server"
    if "chrom" in cmdline:
        return "browser"
    return "other"


def _cli_tokens_per_s(budget: float, out: Path) -> float:
    done = subprocess.run([sys.executable, "-m", "engine.train", "--preset", "lesson", "--time-budget", str(budget),
                           "--out", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["tokens_per_s"]


class _Course:
    """A course server with a fresh database whose learner stands on lesson 7's training card, and a browser."""

    def __init__(self, tmp: Path):
        from bench.app_server import Server  # the same server harness the browser tests use

        self.runs = tmp / f"runs-{time.monotonic_ns()}"
        db = tmp / f"progress-{time.monotonic_ns()}.sqlite3"
        lesson = load_course().entry("training-loop").lesson
        card = next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == "train_run")
        self.budget = float(lesson.cards[card].widget.params["time_budget"])  # what Start trains for
        store = ProgressStore(db)
        store.set_card(store.get_or_create_learner("Guest").id, lesson.id, card)
        store.close()
        os.environ[paths.RUNS_VAR] = str(self.runs)
        self.server = Server(db, tmp / "server.log")

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        from bench.app_server import CHROMIUM_FLAGS

        self.server.start()
        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        self.page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.goto(self.lesson_url)
        return self

    def __exit__(self, *exc):
        self.browser.close()
        self._playwright.stop()
        self.server.stop()

    @property
    def lesson_url(self) -> str:
        return f"{self.server.url}/lesson-7"

    def start_run(self) -> None:
        self.page.get_by_role("button", name="Start training").click()
        self.page.get_by_text("tokens/s").first.wait_for(timeout=60_000)


    def watch_on_cost_meter(self) -> None:
        """Leave lesson 7 for lesson 9's cost meter, which then polls the same run (watching it must cost the
        run nothing measurable)."""
        lesson = load_course().entry("compute-and-scaling").lesson
        card = next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == "cost_meter")
        store = ProgressStore(self.server.db)
        store.set_card(store.get_or_create_learner("Guest").id, lesson.id, card)
        store.close()
        self.page.goto(f"{self.server.url}/lesson-9")
        self.page.get_by_text("FLOPs so far").first.wait_for(timeout=60_000)


def cli_vs_page(reps: int, cost_meter: bool = False) -> list[tuple[str, str]]:
    """The page's default run (the lesson card's time budget) against the CLI with the same budget, `reps` pairs;
    and the CPU each party used while the page trained and was watched. `cost_meter`: the run is started on lesson
    7 and then watched on lesson 9's cost meter instead."""
    rows, slowdowns, cpu, watched_s = [], [], {}, 0.0
    watcher = "lesson 9's cost meter" if cost_meter else "the page"
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            with _Course(Path(tmp)) as course:
                budget = course.budget
                cli_first = rep % 2 == 0  # alternate the order, so a drift of the machine's speed favours neither
                if cli_first:
                    cli = _cli_tokens_per_s(budget, Path(tmp) / f"cli-{rep}")  # the page sits idle meanwhile
                course.start_run()
                if cost_meter:
                    course.watch_on_cost_meter()
                time.sleep(5)  # the training process has started and the page draws the run
                procs = _descendants(os.getpid())
                before, t0 = {pid: _cpu_seconds(pid) for pid in procs}, time.monotonic()
                time.sleep(budget * 0.6)  # well inside the run
                watched_s += time.monotonic() - t0
                for pid, cmdline in procs.items():
                    cpu[_party(cmdline)] = cpu.get(_party(cmdline), 0.0) + _cpu_seconds(pid) - before[pid]
                course.page.get_by_text("✅ Finished").first.wait_for(timeout=(budget + 120) * 1000)
                summary = json.loads(next(course.runs.rglob("summary.json")).read_text())
                if not cli_first:
                    course.page.reload()  # the finished run is drawn once; nothing polls while the CLI trains
                    cli = _cli_tokens_per_s(budget, Path(tmp) / f"cli-{rep}")
            page = summary["tokens_per_s"]
            slowdowns.append(1 - page / cli)
            order = f"CLI, then {watcher}" if cli_first else f"{watcher}, then CLI"
            rows.append((f"pair {rep + 1}: {order} ({budget:g} s each; CLI vs page)",
                         f"{cli:,.0f} vs {page:,.0f} tokens/s ({slowdowns[-1]:+.1%})"))
    rows.append((f"median slowdown of {watcher} vs the CLI (target <= ~10%)", f"{statistics.median(slowdowns):+.1%}"))
    rows.append(("CPU cores used while the page trains and is watched, per party",
                 ", ".join(f"{party} {seconds / watched_s:.2f}" for party, seconds in sorted(cpu.items()))))
    return rows


def run(reps: int = 5, cost_meter: bool = False) -> list[tuple[str, str]]:
    if not shutil.which("chromium"):
        return [("live page vs CLI training speed", "skipped: Chromium not installed")]
    return cli_vs_page(reps, cost_meter=cost_meter)
