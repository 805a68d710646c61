"""A run trained by several processes on this machine: torchrun, with gloo between CPU processes (data parallelism).

A one-process run is `python -m engine.runs.worker` with its job on stdin (engine.runs.worker). A run of N processes
is `python -m torch.distributed.run --standalone --nproc_per_node=N -m engine.runs.worker --job-file F`: torchrun
starts N copies of the same worker, one per rank, and DistributedDataParallel averages their gradients
(engine.train.distributed). What changes for the run manager, and is here:

- The job goes in a file in the run folder (`write_job`, readable by its owner only): stdin reaches torchrun, not
  the ranks. Rank 0 removes it once every rank has joined the process group (so has read it); `end` removes it in
  any case. Rank 0 still reads stop requests from stdin (torchrun's children inherit it), and only rank 0 reports
  on stdout; ranks agree on a stop in their next collective, so one rank hearing it is enough.
- torchrun starts each rank in a session of its own, so signalling torchrun's process group would miss them.
  Each rank reports its process id first thing (the protocol's "rank" event), and `RankGroup` sends a signal
  (the watchdog's SIGTERM, then SIGKILL) to torchrun's group and to each rank's. `end` kills whatever is left once
  torchrun has exited, so a run leaves no process behind.
- Each rank gets the run's CPU threads divided by N (`threads_per_rank`): two processes on two cores share them.

On GPUs the course scales out through Ray Train instead (RunManager.submit's `gpus`, engine.runs.ray_backend).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import paths
from engine.files import write_text
from engine.load import checkpoint
from engine.train.config import TrainConfig

JOB_FILE = ".job.json"  # in the run folder, while the ranks start
JOB_FILE_FLAG = "--job-file"


def check_processes(processes: int, workers: str, config: TrainConfig) -> TrainConfig:
    """The config a run of `processes` processes trains with (on the CPU: "auto" means the CPU here), or a
    ValueError that says why such a run cannot train here: only the manager's own worker processes can be several
    per run (a thread is one process; on Ray, ask for `gpus`), and several processes share the CPU, not one GPU.

    >>> check_processes(2, "process", TrainConfig()).device
    'cpu'
    >>> check_processes(2, "thread", TrainConfig())
    Traceback (most recent call last):
    ...
    ValueError: A run of several processes needs the run manager's worker processes (workers="process"), not "thread".
    """
    if processes < 1:
        raise ValueError(f"A run needs at least one process, not {processes}.")
    if processes == 1:
        return config
    if workers == "ray":
        raise ValueError("On a Ray cluster a data-parallel run asks for `gpus` (Ray Train starts one process per GPU), "
                         "not `processes`.")
    if workers != "process":
        raise ValueError("A run of several processes needs the run manager's worker processes "
                         f'(workers="process"), not "{workers}".')
    if config.device not in ("auto", "cpu"):
        raise ValueError(f"A run of several processes on this machine trains on its CPU (gloo), not {config.device!r}; "
                         "several GPUs train through Ray (`gpus`).")
    return config.with_changes(device="cpu")


def threads_per_rank(threads: int, processes: int) -> int:
    """CPU threads each rank gets: the run's share of the machine, divided between its processes (at least one).

    >>> threads_per_rank(2, 2), threads_per_rank(8, 2), threads_per_rank(1, 2)
    (1, 4, 1)
    """
    return max(1, threads // max(1, processes))


class RankGroup(subprocess.Popen):
    """torchrun's process, and the ranks it started: a signal (terminate, kill) goes to every one of them.

    `ranks` (rank -> process id) fills in as the ranks report themselves; the run manager shares the dict with its
    record of the run. Each rank leads a process group of its own (torchrun's start_new_session), so a signal to
    that group reaches anything the rank started too."""

    ranks: dict[int, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ranks = {}
        super().__init__(*args, **kwargs)

    def send_signal(self, sig: int) -> None:
        for group in (self.pid, *list(self.ranks.values())):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, sig)


def write_job(run_dir: Path, job: dict[str, Any]) -> Path:
    """Write the job where every rank can read it: the run folder, readable by this user only (it holds the text)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / JOB_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(job, fh)
    return path


def command(processes: int, job_file: Path) -> list[str]:
    """torchrun by this interpreter (no PATH lookup), one node, `processes` copies of the worker.

    >>> command(2, Path("/r/.job.json"))[1:6]
    ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m']
    """
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "engine.runs.worker", JOB_FILE_FLAG, str(job_file)]


def spawn(processes: int, job_file: Path, threads: int) -> RankGroup:
    """Start torchrun in a session of its own, with pipes for the protocol (stop requests in, rank 0's messages
    out); stderr is the caller's, so a failing rank's traceback lands in the server's log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.ROOT), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = str(threads)  # (torchrun warns when it has to choose)
    return RankGroup(command(processes, job_file), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                     encoding="utf-8", bufsize=1, env=env, start_new_session=True)


def end(proc: subprocess.Popen, job_file: Path | None) -> None:
    """After torchrun has exited: kill any rank it left (a rank it could not end, or torchrun itself killed), and
    remove the job file if rank 0 could not."""
    with contextlib.suppress(OSError):
        proc.send_signal(signal.SIGKILL)
    if job_file is not None:
        with contextlib.suppress(OSError):
            job_file.unlink(missing_ok=True)


def record_processes(run_dir: Path, processes: int) -> None:
    """Add how many processes trained the run to its summary.json, so a page reading the folder says "2 processes"."""
    path = run_dir / checkpoint.SUMMARY
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(summary, dict) and summary.get("processes") != processes:
        with contextlib.suppress(OSError):
            write_text(path, json.dumps({**summary, "processes": processes}, indent=2))
