"""engine.runs.worker: one run in a training process of its own, driven over JSON lines as the run manager does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.runs.manager import RunManager
from engine.runs.snapshot import snapshot_from_folder
from engine.runs.worker import make_job, spawn
from engine.train.config import PRESETS
from engine.train.job import run_job, stop_message

TINY = PRESETS["tiny"]
ENDLESS = replace(TINY, max_steps=1_000_000)
REPO = Path(__file__).resolve().parents[3]


def _start_worker(job: dict) -> subprocess.Popen:
    proc = spawn()
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.flush()
    return proc


def _job(config, text: str, run_dir: Path) -> dict:
    return make_job(config, text, None, None, run_dir, heartbeat_timeout=300.0)


def _read_until(proc: subprocess.Popen, event: str) -> list[dict]:
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == event:
            return seen
    raise AssertionError(f"the worker ended without a {event!r} event; it sent {[m['event'] for m in seen]}")


def test_the_protocol_started_records_done(tmp_path: Path, small_text: str) -> None:
    proc = _start_worker(_job(replace(TINY, max_steps=12), small_text, tmp_path / "run"))
    messages = _read_until(proc, "done")
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    assert messages[0]["event"] == "started" and messages[0]["params"] > 0
    assert messages[0]["device_sentence"].startswith("Training on")
    records = [m["record"] for m in messages if m["event"] == "record"]
    assert [r["step"] for r in records] == list(range(13))
    assert messages[-1]["status"] == "finished" and messages[-1]["summary"]["steps"] == 12
    assert (tmp_path / "run" / "ckpt.pt").exists()


def test_the_server_going_away_stops_the_run_and_saves(tmp_path: Path, small_text: str) -> None:
    """Closing stdin (the server exited or was killed) is the worker's cue to stop, save and exit."""
    proc = _start_worker(_job(ENDLESS, small_text, tmp_path / "run"))
    for line in proc.stdout:
        message = json.loads(line)
        if message["event"] == "record" and message["record"]["step"] >= 3:
            break
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the server's terminal reaches the worker too: it must not die
    proc.stdin.close()
    # The signal is ignored or pending from the moment send_signal returns, so a worker that Ctrl-C killed could
    # not go on to notice the closed stdin, save as stopped by the server going away and exit 0.
    assert proc.wait(timeout=30) == 0
    saved = snapshot_from_folder(tmp_path / "run")
    assert saved.status == "stopped" and "course server stopped" in saved.message
    assert saved.resumable and saved.checkpoint_step is not None


def test_a_killed_training_process_is_reported_not_hung(tmp_path: Path, small_text: str) -> None:
    manager = RunManager(max_concurrent=1, runs_root=tmp_path, workers="process")
    run_id = manager.submit(ENDLESS, small_text)
    deadline = time.monotonic() + 60
    while manager.snapshot(run_id).step < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    manager._runs[run_id].process.kill()  # as the kernel's out-of-memory killer would
    snap = manager.wait(run_id, timeout=30)
    assert snap.status == "failed" and "ended unexpectedly" in snap.message


def test_run_job_in_this_process_reports_a_failure_as_a_status(tmp_path: Path, small_text: str) -> None:
    started = []
    status, message, summary = run_job(
        TINY.with_changes(block_size=50_000), small_text, None, None, tmp_path / "run", threading.Event(),
        lambda: None, 300.0, on_started=started.append, on_record=lambda r: None)
    assert status == "failed" and "block_size" in message and summary is None and not started


@pytest.mark.parametrize("reason, words", [("timeout", "Nobody was watching this run for 5 minutes"),
                                           ("orphan", "course server stopped"), ("user", "Stopped at step 7")])
def test_stop_messages_say_why(reason: str, words: str) -> None:
    assert words in stop_message(reason, 7, 300.0)
    assert "checkpoint is saved" in stop_message(reason, 7, 300.0)


def _wait_for_step(proc: subprocess.Popen, step: int) -> None:
    for line in proc.stdout:
        message = json.loads(line)
        if message["event"] == "record" and message["record"]["step"] >= step:
            return
    raise AssertionError("the worker ended before training got under way")


def test_a_closed_stdout_stops_the_run_and_saves(tmp_path: Path, small_text: str) -> None:
    """The server's end of the progress pipe closing (it died) must not fail the run: stop, save, exit 0."""
    proc = _start_worker(_job(ENDLESS, small_text, tmp_path / "run"))
    _wait_for_step(proc, 3)
    proc.stdout.close()  # stdin stays open: only the next progress write can tell
    assert proc.wait(timeout=60) == 0
    saved = snapshot_from_folder(tmp_path / "run")
    assert saved.status == "stopped" and "course server stopped" in saved.message
    assert saved.resumable and saved.checkpoint_step >= 3


_PARENT = """
import json, sys, time
from dataclasses import replace
from pathlib import Path
from engine.train.config import PRESETS
from engine.runs.worker import make_job, spawn
run_dir, marker, text = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]).read_text()
proc = spawn()
proc.stdin.write(json.dumps(make_job(replace(PRESETS["tiny"], max_steps=1_000_000), text, None, None, run_dir,
                                     heartbeat_timeout=300.0)) + "\\n")
proc.stdin.flush()
for line in proc.stdout:  # keeps reading, as the run manager does, until it is killed
    message = json.loads(line)
    if message["event"] == "record" and message["record"]["step"] >= 3 and not marker.exists():
        marker.write_text(str(proc.pid))
"""


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited (its parent is gone)
    except FileNotFoundError:
        return False


def test_the_server_killed_with_sigkill_leaves_a_saved_run(tmp_path: Path, small_text: str) -> None:
    """kill -9 of the server closes both of the worker's pipes at once: it must stop, save and exit on its own."""
    corpus, marker, run_dir = tmp_path / "corpus.txt", tmp_path / "marker", tmp_path / "run"
    corpus.write_text(small_text, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(run_dir), str(marker), str(corpus)],
                              cwd=REPO)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert parent.poll() is None and time.monotonic() < deadline, "training never got under way"
        time.sleep(0.05)
    time.sleep(0.05)  # the marker's text is written
    worker_pid = int(marker.read_text())
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 60
    while _pid_alive(worker_pid):
        assert time.monotonic() < deadline, "the orphaned worker is still running"
        time.sleep(0.1)
    assert {"ckpt.pt", "metrics.jsonl", "summary.json"} <= {p.name for p in run_dir.iterdir()}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped" and "course server stopped" in summary["message"]
    assert not list(run_dir.rglob("*.tmp"))


def test_sigterm_stops_the_run_and_saves(tmp_path: Path, small_text: str) -> None:
    """SIGTERM (a shutdown, `kill`, a container stopping) is a request to stop: save first, then exit 0."""
    proc = _start_worker(_job(ENDLESS, small_text, tmp_path / "run"))
    _wait_for_step(proc, 3)
    proc.send_signal(signal.SIGTERM)
    messages = _read_until(proc, "done")
    assert proc.wait(timeout=60) == 0
    assert messages[-1]["status"] == "stopped" and "asked to end" in messages[-1]["message"]
    saved = snapshot_from_folder(tmp_path / "run")
    assert saved.status == "stopped" and "asked to end" in saved.message
    assert saved.resumable
