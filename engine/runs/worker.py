"""One training run from start to saved folder, in this process or in a process of its own.

`engine.train.job.run_job` is the whole life of a run: prepare, train, explain how it ended, save. The run manager
(engine.runs.manager) calls it either in a background thread or, by default, in a child process started as
`python -m engine.runs.worker`, which is this module.

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
                      {"event": "saved", "step": int}                         (a checkpoint written mid-run)
                      {"event": "save_failed", "step": int, "message": str}   (one could not be; it trains on)
                      {"event": "done", "status": str, "message": str, "summary": {...} | null}

The job may also carry "checkpoint_every_s" (float; default engine.train.job.CHECKPOINT_EVERY_S), and for a fine-tune
(engine.train.finetune) "finetune_from" (a run folder) and "original_text" (str); "started" then carries "finetune".
A parent must ignore events it does not know, so new ones can be added without breaking it.

If the parent goes away, the run stops as if the learner had pressed Stop (reason "orphan"), saves, and exits
with code 0. The parent dying closes both pipes: stdin reaches end of file, and the next progress line cannot be
written (a broken pipe); either one is the signal, and once the output is gone nothing more is written to it.
Ctrl-C in the terminal that serves the course reaches this process too; it ignores it and stops the same way when
the server's pipes close, so a run interrupted that way still leaves its checkpoint. SIGTERM (a shutdown, `kill`,
a container stopping) stops the run too (reason "terminate"): it saves, reports and exits 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paths
from engine.train.config import TrainConfig
from engine.train.job import CHECKPOINT_EVERY_S, run_job
from engine.transform.tokenization import Tokenizer, tokenizer_from_dict

# ---- starting a child process (the parent's side) ---------------------------------------------------------


def make_job(config: TrainConfig, text: str | None, tokenizer: Tokenizer | None, resume_from: Path | None,
             run_dir: Path, heartbeat_timeout: float,
             checkpoint_every_s: float = CHECKPOINT_EVERY_S, finetune_from: Path | None = None,
             original_text: str | None = None) -> dict[str, Any]:
    """The first line a training process reads: everything `run_job` needs, as plain JSON-able data."""
    job = {"config": config.to_dict(), "text": text,
           "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
           "resume_from": str(resume_from) if resume_from is not None else None,
           "run_dir": str(run_dir), "heartbeat_timeout": heartbeat_timeout,
           "checkpoint_every_s": checkpoint_every_s}
    if finetune_from is not None:
        job["finetune_from"] = str(finetune_from)
    if original_text is not None:
        job["original_text"] = original_text
    return job


def spawn() -> subprocess.Popen:
    """Start `python -m engine.runs.worker` with pipes for the protocol; the caller writes the job line next.
    Its stderr is the caller's, so a failing run's traceback lands in the server's log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-m", "engine.runs.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, encoding="utf-8", bufsize=1, env=env)


# ---- the child process ------------------------------------------------------------------------------------


def _listen(stream, stop: Any) -> None:
    """Read stop requests from the parent; the parent closing the pipe counts as one."""
    try:
        for line in stream:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if isinstance(request, dict) and "stop" in request:
                stop(str(request["stop"]))
    except (OSError, ValueError):  # the pipe broke rather than closed: the parent is gone all the same
        pass
    stop("orphan")


class _Output:
    """The protocol's end of stdout. A write that fails (the parent died: EPIPE, or any OSError) must not end
    the run: it calls `on_gone` once, and every later message is dropped, so the run can stop and save."""

    def __init__(self, fd: int, on_gone: Any) -> None:
        self.fd, self.on_gone, self.gone = fd, on_gone, False
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode("utf-8")
        with self.lock:
            if self.gone:
                return
            try:
                while data:  # os.write may write part of a large line
                    data = data[os.write(self.fd, data):]
            except OSError:
                self.gone = True
        if self.gone:
            self.on_gone()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def main() -> None:
    """Read the job, train it with run_job, report over stdout; always exit 0 once the job was read."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's end of the pipe closing is our signal to stop
    if hasattr(signal, "SIGPIPE"):  # a write to a closed pipe raises BrokenPipeError instead of killing us
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # stdout carries the protocol only: anything else printed (a library's warning) goes to stderr instead
    out_fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr

    stop_event, reason = threading.Event(), [None]

    def stop(why: str) -> None:
        reason[0] = reason[0] or why  # the first reason wins: a learner's Stop stays a Stop
        stop_event.set()

    out = _Output(out_fd, lambda: stop("orphan"))
    signal.signal(signal.SIGTERM, lambda signum, frame: stop("terminate"))
    job = json.loads(sys.stdin.readline())
    threading.Thread(target=_listen, args=(sys.stdin, stop), daemon=True).start()
    tokenizer = tokenizer_from_dict(job["tokenizer"]) if job.get("tokenizer") else None
    status, message, summary = run_job(
        TrainConfig.from_dict(job["config"]), job["text"], tokenizer,
        Path(job["resume_from"]) if job.get("resume_from") else None, Path(job["run_dir"]),
        stop_event, lambda: reason[0], float(job["heartbeat_timeout"]),
        on_started=lambda info: out.send({"event": "started", **info}),
        on_record=lambda record: out.send({"event": "record", "record": record}),
        on_event=out.send,
        checkpoint_every_s=float(job.get("checkpoint_every_s", CHECKPOINT_EVERY_S)),
        finetune_from=Path(job["finetune_from"]) if job.get("finetune_from") else None,
        original_text=job.get("original_text"),
    )
    out.send({"event": "done", "status": status, "message": message, "summary": summary})
    out.close()


if __name__ == "__main__":
    main()
