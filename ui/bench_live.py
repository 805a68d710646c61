"""How much does watching a run cost it? `python -m ui.bench --live` appends the answer to docs/benchmarks.md.

Issue 4's target: the live page slows training by at most about 10% compared with the command line. On a 2-core
machine the browser, the course server and the training share the same cores, so this measures all three at once,
in Debian's Chromium, headless and without a GPU (the worst case: a learner's browser usually has a GPU and more
cores).

Two measurements, because this machine's own speed drifts by ±20% from minute to minute (other work on the host):

1. **CLI vs page**: the `lesson` preset from `python -m engine.train` (with lesson 7's page open and idle), then
   the same run started from the page while Chromium watches it, `reps` times; the median of the paired ratios.
2. **Watching vs not, within one run**: one long run started from the page while the browser alternates between
   lesson 7 and a blank tab every `segment` seconds. Both halves share one process and one stretch of time, so
   this is the cleanest figure for what the page itself costs. It also records the CPU each party used.
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

from course.loader import load_course
from course.progress import ProgressStore

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
SETTLE_S = 2.0  # after the page has drawn the run again, before its watching segment starts


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
    if "engine.worker" in cmdline:
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
        from tests.e2e.conftest import Server  # the same server harness the browser tests use

        self.runs = tmp / f"runs-{time.monotonic_ns()}"
        db = tmp / f"progress-{time.monotonic_ns()}.sqlite3"
        lesson = load_course().entry("training-loop").lesson
        card = next(i for i, c in enumerate(lesson.cards) if c.widget and c.widget.name == "train_run")
        self.budget = float(lesson.cards[card].widget.params["time_budget"])  # what Start trains for
        store = ProgressStore(db)
        store.set_card(store.get_or_create_learner("Guest").id, lesson.id, card)
        store.close()
        os.environ["COURSE_RUNS_DIR"] = str(self.runs)
        self.server = Server(db, tmp / "server.log")

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        from tests.e2e.conftest import CHROMIUM_FLAGS

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

    def start_run(self, longest: bool = False) -> None:
        if longest:  # the time-budget slider to its maximum
            slider = self.page.locator('[data-testid="stSlider"]').filter(has_text="Time budget").get_by_role("slider")
            slider.press("End")
            time.sleep(1.5)
        self.page.get_by_role("button", name="Start training").click()
        self.page.get_by_text("tokens/s").first.wait_for(timeout=60_000)

    def metrics(self) -> list[dict]:
        return [json.loads(line) for line in next(self.runs.rglob("metrics.jsonl")).read_text().splitlines()]


def cli_vs_page(reps: int) -> list[tuple[str, str]]:
    """The page's default run (the lesson card's time budget) against the CLI with the same budget."""
    rows, slowdowns = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            with _Course(Path(tmp)) as course:
                budget = course.budget
                cli = _cli_tokens_per_s(budget, Path(tmp) / f"cli-{rep}")  # the page sits idle meanwhile
                course.start_run()
                course.page.get_by_text("✅ Finished").first.wait_for(timeout=(budget + 120) * 1000)
                summary = json.loads(next(course.runs.rglob("summary.json")).read_text())
            page = summary["tokens_per_s"]
            slowdowns.append(1 - page / cli)
            rows.append((f"pair {rep + 1}: CLI, then the page ({budget:g} s each)",
                         f"{cli:,.0f} vs {page:,.0f} tokens/s ({slowdowns[-1]:+.1%})"))
    rows.append(("median slowdown of the page vs the CLI (target <= ~10%)", f"{statistics.median(slowdowns):+.1%}"))
    return rows


def watching_vs_not(segment: float, segments: int) -> list[tuple[str, str]]:
    """Within one run of the longest budget the card allows: segments with lesson 7 open and segments with a
    blank tab, alternately; tokens/s of each from the run's own per-step records (their wall_time)."""
    marks: list[tuple[float, str]] = []
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, _Course(Path(tmp)) as course:
        course.start_run(longest=True)
        time.sleep(3)
        for i in range(segments):
            watching = i % 2 == 0
            if watching and i:
                course.page.goto(course.lesson_url)  # a full page load: not part of watching, so wait it out
                course.page.get_by_text("tokens/s").first.wait_for(timeout=60_000)
                time.sleep(SETTLE_S)
            elif not watching:
                course.page.goto("about:blank")
            marks.append((time.time(), "watching" if watching else "blank tab"))
            if watching:  # CPU per party over this segment
                procs = _descendants(os.getpid())
                before = {pid: _cpu_seconds(pid) for pid in procs}
                time.sleep(segment)
                for pid, cmdline in procs.items():
                    party = _party(cmdline)
                    cpu[party] = cpu.get(party, 0.0) + _cpu_seconds(pid) - before[pid]
            else:
                time.sleep(segment)
        marks.append((time.time(), "end"))
        course.page.goto(course.lesson_url)
        course.page.get_by_role("button", name="Stop").click()
        course.page.get_by_text("⏹️ Stopped").first.wait_for(timeout=60_000)
        records = [r for r in course.metrics() if "wall_time" in r]

    rates: list[tuple[str, float]] = []
    for (start, kind), (end, _) in zip(marks, marks[1:], strict=False):
        inside = [r for r in records if start + 1 <= r["wall_time"] <= end]
        if len(inside) > 2:
            rates.append((kind, (inside[-1]["tokens"] - inside[0]["tokens"])
                          / (inside[-1]["wall_time"] - inside[0]["wall_time"])))
    # Each watching segment against the blank segments on either side of it: the machine's own drift cancels.
    costs = []
    for i, (kind, rate) in enumerate(rates):
        around = [r for k, r in rates[max(0, i - 1):i + 2] if k == "blank tab"]
        if kind == "watching" and around:
            costs.append(1 - rate / statistics.mean(around))
    watched = [r for k, r in rates if k == "watching"]
    blank = [r for k, r in rates if k == "blank tab"]
    watched_s = segment * len(watched)
    shares = ", ".join(f"{party} {seconds / watched_s:.2f}" for party, seconds in sorted(cpu.items()))
    return [
        (f"one run, {segments} segments of {segment:g} s: lesson 7 open / a blank tab, alternately (tokens/s)",
         " / ".join(f"{r:,.0f}" for r in watched) + " vs " + " / ".join(f"{r:,.0f}" for r in blank)),
        ("cost of watching, each watched segment vs the blank ones beside it",
         ", ".join(f"{c:+.1%}" for c in costs)),
        ("median cost of watching (target <= ~10%)", f"{statistics.median(costs):+.1%}"),
        ("CPU cores used while watching, per party", shares),
    ]


def run(reps: int = 3, segment: float = 12.0, segments: int = 12) -> list[tuple[str, str]]:
    if not shutil.which("chromium"):
        return [("live page vs CLI training speed", "skipped: Chromium not installed")]
    return cli_vs_page(reps) + watching_vs_not(segment, segments)
