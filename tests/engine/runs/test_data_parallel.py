"""Data parallelism through the run manager (engine.runs.ranks): a run of two processes under torchrun (gloo) trains,
stops and leaves no process behind; a rank that hangs is ended with the rest; and the show-me functions of
engine.train.data_parallel (the comparison a page shows, one step of two ranks taken apart)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import torch

from engine.runs import ranks
from engine.runs.executors import RunRecord, job_of
from engine.runs.manager import RunManager
from engine.runs.queue_store import StoredRun
from engine.runs.snapshot import snapshot_from_folder
from engine.train.config import PRESETS
from engine.train.data_parallel import compare, ddp_step, loss_at
from engine.transform.model import GPT, GPTConfig

TINY = PRESETS["tiny"]
ENDLESS = replace(TINY, max_steps=1_000_000, eval_interval=10)  # runs until stopped, evaluated often


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """The process has ended (a zombie nobody has reaped yet has ended too: it holds no CPU, memory or files)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_two_processes_train_one_run_and_stop_leaves_no_process_behind(tmp_path: Path, small_text: str) -> None:
    m = RunManager(max_concurrent=1, runs_root=tmp_path / "runs", workers="process")
    run_id = m.submit(ENDLESS, small_text, label="two ranks", processes=2)
    record = m._runs[run_id]  # the manager's own record: which processes it knows to end
    try:
        wait_for(lambda: len(record.ranks) == 2 and len(m.snapshot(run_id).evals) >= 3)
        snap = m.snapshot(run_id)
        assert snap.status == "running" and snap.processes == 2 and m.slots() == {0: run_id}  # one slot
        assert snap.device_sentence.startswith("Training on CPU, 2 processes x 1 thread")
        torchrun_pid = record.process.pid
        pids = [torchrun_pid, *record.ranks.values()]
        assert len(set(pids)) == 3 and not any(gone(p) for p in pids)
        m.stop(run_id)
        snap = m.wait(run_id, timeout=60)
    finally:
        if m.snapshot(run_id).active:
            m.stop(run_id)
    assert snap.status == "stopped" and "Stopped at step" in snap.message
    # both ranks trained: every step took 2 × batch × block tokens, which the all-reduce cannot do without rank 1
    per_rank = TINY.batch_size * TINY.model.block_size
    assert all(r["tokens"] == r["step"] * 2 * per_rank for r in snap.metrics)
    evals = snap.evals
    assert evals[0][0] == 0 and evals[-1][1] < evals[0][1] - 0.3  # the loss fell
    assert snap.summary["processes"] == 2 and snap.processes == 2
    saved = snapshot_from_folder(snap.run_dir)
    assert saved.processes == 2 and saved.status == "stopped" and saved.resumable
    assert not (Path(snap.run_dir) / ranks.JOB_FILE).exists()  # the job file (the text) is gone
    wait_for(lambda: all(gone(p) for p in pids), timeout=15)


HUNG_RANK = """
import json, os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # deaf to the polite request and to SIGTERM alike
os.write(1, (json.dumps({"event": "rank", "rank": int(os.environ["RANK"]), "pid": os.getpid()}) + "\\n").encode())
while True:
    time.sleep(0.1)
"""


def test_a_hung_two_process_run_is_ended_whole(tmp_path: Path, small_text: str, monkeypatch) -> None:
    """torchrun starts each rank in a session of its own: ending the run must reach them, not only torchrun."""
    script = tmp_path / "hung_rank.py"
    script.write_text(HUNG_RANK)
    started: list[ranks.RankGroup] = []

    def spawn_hung(processes: int, job_file: Path, threads: int) -> ranks.RankGroup:
        assert job_file.is_file() and oct(job_file.stat().st_mode & 0o777) == "0o600"
        proc = ranks.RankGroup([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                f"--nproc_per_node={processes}", str(script)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, encoding="utf-8", bufsize=1,
                               start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        started.append(proc)
        return proc

    monkeypatch.setattr(ranks, "spawn", spawn_hung)
    m = RunManager(max_concurrent=1, runs_root=tmp_path / "runs", terminate_after=0.5, kill_after=0.5)
    run_id = m.submit(ENDLESS, small_text, processes=2)
    record = m._runs[run_id]
    try:
        wait_for(lambda: len(record.ranks) == 2, timeout=60)
        pids = [started[0].pid, *record.ranks.values()]
        m.stop(run_id)
        snap = m.wait(run_id, timeout=30)
    finally:
        for proc in started:
            proc.kill()
    assert snap.status == "stopped" and "did not stop within 0.5 seconds" in snap.message
    wait_for(lambda: all(gone(p) for p in pids), timeout=15)
    assert not (Path(snap.run_dir) / ranks.JOB_FILE).exists()


def test_several_processes_only_in_worker_processes_on_the_cpu(tmp_path: Path, small_text: str) -> None:
    threaded = RunManager(runs_root=tmp_path / "runs", workers="thread")
    with pytest.raises(ValueError, match='workers="process"'):
        threaded.submit(TINY, small_text, processes=2)
    with pytest.raises(ValueError, match="gpus"):
        ranks.check_processes(2, "ray", TINY)
    with pytest.raises(ValueError, match="CPU"):
        ranks.check_processes(2, "process", replace(TINY, device="cuda"))
    assert ranks.check_processes(2, "process", replace(TINY, device="auto")).device == "cpu"
    assert ranks.check_processes(1, "thread", TINY) is TINY  # one process: nothing to check
    assert ranks.threads_per_rank(2, 2) == 1 and ranks.threads_per_rank(16, 2) == 8  # the run's threads, shared
    assert threaded.list_runs() == []


def test_a_waiting_run_keeps_its_processes_through_a_restart(tmp_path: Path) -> None:
    run = RunRecord(run_id="r", label="", config=TINY, text="abc", tokenizer=None, run_dir=tmp_path, resume_from=None,
                    created_at=0.0, processes=2)
    job = job_of(run, heartbeat_timeout=30.0)
    assert job["processes"] == 2
    stored = StoredRun("r", "", None, "", str(tmp_path), job, "queued", None, 0.0)
    assert stored.to_record().processes == 2


# ---- the show-me functions ------------------------------------------------------------------------------------


def _run(processes: int, points: list[tuple[int, int, float | None, float]], config: dict | None = None):
    """A run as `compare` reads it: (step, tokens, val_loss or None, elapsed_s) records."""
    metrics = [{"step": s, "tokens": t, "val_loss": v, "elapsed_s": e} for s, t, v, e in points]
    return SimpleNamespace(processes=processes, status="finished", config=config or {}, metrics=metrics)


def test_compare_sets_the_runs_side_by_side() -> None:
    one = _run(1, [(0, 0, 4.0, 0.0), (50, 102_400, 3.0, 10.0), (100, 204_800, 2.5, 20.0)])
    two = _run(2, [(0, 0, 4.0, 0.0), (25, 102_400, 3.2, 9.0), (55, 225_280, 2.6, 20.0)])
    c = compare(one, two)
    assert (c.one.tokens_per_step, c.two.tokens_per_step) == (2048, 4096)
    assert c.two.tokens_per_s == pytest.approx(225_280 / 20.0) and c.speedup == pytest.approx(1.1)
    assert c.common_tokens == 204_800  # the most both curves reach: where the one-process run ended
    assert c.loss_at_common(c.one) == pytest.approx(2.5)
    assert c.loss_at_common(c.two) == pytest.approx(3.2 + (2.6 - 3.2) * (204_800 - 102_400) / (225_280 - 102_400))
    rows = {what: (a, b) for what, a, b in c.rows()}
    assert rows["Processes (ranks)"] == ("1", "2") and rows["Tokens per step, all ranks"] == ("2,048", "4,096")
    assert rows["Validation loss at the end"] == ("2.500", "2.600") and rows["Steps"] == ("100", "55")
    assert "Validation loss at 204,800 tokens seen" in rows


def test_compare_before_the_runs_have_trained() -> None:
    """Queued or just started: the tokens per step come from the config, nothing else is made up."""
    waiting = _run(2, [], config={"batch_size": 32, "block_size": 64})
    c = compare(_run(1, [(0, 0, 4.0, 0.0)]), waiting)
    assert c.two.tokens_per_step == 4096 and c.two.tokens_per_s is None and c.two.final_loss is None
    assert c.common_tokens is None and c.speedup is None
    assert all(what != "Validation loss at" for what, _, _ in c.rows())
    assert loss_at([(0, 4.0)], 0) == 4.0 and loss_at([], 10) is None


def test_one_ddp_step_averages_the_ranks_into_the_whole_batch_gradient() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=40))
    x = torch.randint(0, 40, (8, 16))
    y = torch.roll(x, -1, 1)
    before = [p.detach().clone() for p in model.parameters()]
    s = ddp_step(model, x, y, ranks=2)
    assert s.sequences_per_rank == 4 and s.tokens == 8 * 16
    assert s.relative_difference < 1e-5  # the all-reduced average is the whole batch's gradient
    assert sum(s.rank_losses) / 2 == pytest.approx(s.whole_loss, rel=1e-5)
    assert s.averaged_grad_norm == pytest.approx(s.whole_grad_norm, rel=1e-5)
    assert s.rank_cosine < 0.99 and all(n > s.whole_grad_norm * 0.5 for n in s.rank_grad_norms)  # two noisy halves
    assert s.parameters == sum(p.numel() for p in model.parameters())
    assert s.allreduce_bytes == 4 * s.parameters and s.ring_bytes_per_rank == s.allreduce_bytes  # 2 (n-1)/n = 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # weights untouched
    assert all(p.grad is None for p in model.parameters()) and model.training
    with pytest.raises(ValueError):
        ddp_step(model, x[:7], y[:7], ranks=2)

