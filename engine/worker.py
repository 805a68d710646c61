"""One training run from start to saved folder, in this process or in a process of its own.

`engine.job.run_job` is the whole life of a run: prepare, train, explain how it ended, save. The run manager
(engine.runs) calls it either in a background thread or, by default, in a child process started as
`python -m engine.worker`, which is this module.

Why a child process: a run in a thread of the course's web server shares one Python interpreter (and its GIL)
with the server. Every second the lesson page reruns, the server renders, serialises and sends the chart, and
while it holds the GIL the training thread cannot launch its next operation; on a 2-core machine that cost
20-40% of training speed (docs/training-notes.md). In its own process the run has its own interpreter and
trains at the command line's speed however busy the page is.

The protocol is plain JSON lines over the child's stdin and stdout:

    parent -> child   {"config": {...}, "text": "...", "tokenizer": {...} | null, "resume_from": str | null,
                       "run_dir": str, "heartbeat_timeout": float}          (first line: the job)
                      {"stop": "user" | "timeout"}                            (any time later)
    child -> parent   {"event": "started", "params": int, "device_sentence": str, "config": {...}}
                      {"event": "record", "record": {...}}                    (one per training step)
                      {"event": "done", "status": str, "message": str, "summary": {...} | null}

If the parent goes away (stdin closes), the run stops as if the learner had pressed Stop, and saves. Ctrl-C in the
terminal that serves the course reaches this process too; it ignores it and stops the same way when the server's
end of the pipe closes, so a run interrupted that way still leaves its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from engine.config import REPO_ROOT, TrainConfig
from engine.job import run_job
from engine.tokenization import Tokenizer, tokenizer_from_dict

# ---- starting a child process (the parent's side) ---------------------------------------------------------


def make_job(config: TrainConfig, text: str | None, tokenizer: Tokenizer | None, resume_from: Path | None,
             run_dir: Path, heartbeat_timeout: float) -> dict[str, Any]:
    """The first line a training process reads: everything `run_job` needs, as plain JSON-able data."""
    return {"config": config.to_dict(), "text": text,
            "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
            "resume_from": str(resume_from) if resume_from is not None else None,
            "run_dir": str(run_dir), "heartbeat_timeout": heartbeat_timeout}


def spawn() -> subprocess.Popen:
    """Start `python -m engine.worker` with pipes for the protocol; the caller writes the job line next.
    Its stderr is the caller's, so a failing run's traceback lands in the server's log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "engine.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, encoding="utf-8", bufsize=1, env=env)


# ---- the child process ------------------------------------------------------------------------------------


def _listen(stream, stop_event: threading.Event, reason: list[str | None]) -> None:
    """Read stop requests from the parent; the parent closing the pipe counts as one."""
    for line in stream:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if "stop" in request:
            reason[0] = reason[0] or str(request["stop"])
            stop_event.set()
    reason[0] = reason[0] or "orphan"
    stop_event.set()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's end of the pipe closing is our signal to stop
    # stdout carries the protocol only: anything else printed (a library's warning) goes to stderr instead
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    send_lock = threading.Lock()

    def send(message: dict[str, Any]) -> None:
        line = json.dumps(message)
        with send_lock:
            out.write(line + "\n")

    job = json.loads(sys.stdin.readline())
    stop_event, reason = threading.Event(), [None]
    threading.Thread(target=_listen, args=(sys.stdin, stop_event, reason), daemon=True).start()
    tokenizer = tokenizer_from_dict(job["tokenizer"]) if job.get("tokenizer") else None
    status, message, summary = run_job(
        TrainConfig.from_dict(job["config"]), job["text"], tokenizer,
        Path(job["resume_from"]) if job.get("resume_from") else None, Path(job["run_dir"]),
        stop_event, lambda: reason[0], float(job["heartbeat_timeout"]),
        on_started=lambda info: send({"event": "started", **info}),
        on_record=lambda record: send({"event": "record", "record": record}),
    )
    send({"event": "done", "status": status, "message": message, "summary": summary})
    out.close()


if __name__ == "__main__":
    main()
