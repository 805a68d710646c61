"""One training run in a process of its own: `python -m engine.runs.worker`, driven over JSON lines.

`engine.train.job.run_job` is the whole life of a run (prepare, train, explain how it ended, save). The run
manager (engine.runs.manager) calls it in a background thread or, by default, in this child process: a run in a
thread of the web server shares the server's interpreter lock, and every redraw of the live page took time from
training (docs/training-notes.md); in a process of its own it trains at the command line's speed.

The job is the first line on stdin and a stop request may follow; one JSON event per line comes back on stdout
(started, a record per step, saved, done). If the parent goes away (stdin ends, or stdout breaks) or SIGTERM
arrives, the run stops, saves and exits 0; Ctrl-C is ignored, since the parent's pipes closing says the same.
The protocol line by line: docs/architecture.md, "The worker's protocol".

Under torchrun (a run of several processes, engine.runs.ranks) each rank runs this same code: the job comes from
the file `--job-file` names, every rank first reports its process id ("rank"), and from then on only rank 0
reports and reads stop requests. A rank whose run failed exits 1, so that torchrun ends the others.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist

import paths
from engine.runs.ranks import JOB_FILE_FLAG
from engine.train.config import TrainConfig
from engine.train.distributed import DistInfo, setup_distributed
from engine.train.job import CHECKPOINT_EVERY_S, RankFailed, run_job
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
        """Close the protocol's end, once (a second os.close could close a file opened since under the same number)."""
        with self.lock:
            fd, self.fd, self.gone = self.fd, -1, True
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def train_job(job: dict[str, Any], stop_event: threading.Event, stop_reason: Callable[[], str | None],
              send: Callable[[dict[str, Any]], None], threads: int | None = None,
              dist_info: DistInfo | None = None) -> dict[str, Any]:
    """Train a job (`make_job`'s dict) with run_job, sending the protocol's messages to `send`, and return the
    "done" message (not sent): what a worker process and a Ray task (engine.runs.ray_actor) both do with a job.
    A config without a thread count gets `threads`."""
    config = TrainConfig.from_dict(job["config"])
    if config.threads is None and threads is not None:
        config = config.with_changes(threads=threads)
    tokenizer = tokenizer_from_dict(job["tokenizer"]) if job.get("tokenizer") else None
    status, message, summary = run_job(
        config, job["text"], tokenizer, Path(job["resume_from"]) if job.get("resume_from") else None,
        Path(job["run_dir"]), stop_event, stop_reason, float(job.get("heartbeat_timeout", 300.0)),
        on_started=lambda info: send({"event": "started", **info}),
        on_record=lambda record: send({"event": "record", "record": record}),
        dist_info=dist_info, on_event=send,
        checkpoint_every_s=float(job.get("checkpoint_every_s", CHECKPOINT_EVERY_S)),
        finetune_from=Path(job["finetune_from"]) if job.get("finetune_from") else None,
        original_text=job.get("original_text"),
    )
    return {"event": "done", "status": status, "message": message, "summary": summary}


def _read_job(argv: list[str]) -> tuple[dict[str, Any], Path | None]:
    """The job, and the file it came from: `--job-file F` under torchrun (engine.runs.ranks), else stdin's first line."""
    if JOB_FILE_FLAG in argv[:-1]:
        path = Path(argv[argv.index(JOB_FILE_FLAG) + 1])
        return json.loads(path.read_text(encoding="utf-8")), path
    return json.loads(sys.stdin.readline()), None


def main(argv: list[str] | None = None) -> None:
    """Read the job, train it with run_job, report over stdout; exit 0 once the job was read, unless this process
    is a rank of a torchrun job that failed (then torchrun must end the others)."""
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
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:  # first thing: the run manager can end this rank from now on (engine.runs.ranks.RankGroup)
        out.send({"event": "rank", "rank": rank, "pid": os.getpid()})
    job, job_file = _read_job(sys.argv[1:] if argv is None else argv)
    send, dist_info = out.send, None
    if world > 1:
        if rank != 0:  # rank 0 alone reports and hears stop requests; the ranks agree on a stop
            out.close()
            send = lambda message: None  # noqa: E731
        dist_info = setup_distributed(job["config"].get("device", "cpu"))  # every rank has read the job by now
        if rank == 0 and job_file is not None:
            with contextlib.suppress(OSError):
                job_file.unlink()  # it holds the learner's text
    if rank == 0:
        threading.Thread(target=_listen, args=(sys.stdin, stop), daemon=True).start()
    try:
        done = train_job(job, stop_event, lambda: reason[0], send, dist_info=dist_info)
    except RankFailed as err:  # a rank that returned would leave the others waiting in a collective
        send({"event": "done", "status": err.status, "message": err.message, "summary": err.summary})
        out.close()
        sys.exit(1)
    send(done)
    out.close()
    if dist_info is not None:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
