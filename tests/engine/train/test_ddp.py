"""Scale-out: the trainer under torchrun with DistributedDataParallel (gloo, two CPU processes).

Each process trains on its own random batches; DDP averages the gradients, so both must end with the same
weights. The worker script below is what `torchrun -m engine.train` does, minus the command line; the failure
and resume tests run the command line itself (engine.train.cli.main) under torchrun.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]

WORKER = """
import json, sys, time
import torch
import engine.device
from engine.train.config import PRESETS
from engine.train.distributed import setup_distributed
from engine.train.loop import train_loop
from engine.train.prepare import prepare

out_dir, corpus, overrides, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
dinfo = setup_distributed("cpu")
if options.get("split_probe"):  # the CPU bf16 speed probe answers differently on each rank
    engine.device._measure_bf16_cpu = lambda: dinfo.rank == 0
state = prepare(PRESETS["tiny"].with_changes(**{"max_steps": 8, "device": "cpu", **overrides}),
                open(corpus, encoding="utf-8").read(), dist_info=dinfo)
dropout_seed = torch.initial_seed()
if dinfo.rank == 1:
    time.sleep(options.get("rank1_late", 0.0))  # rank 1's clock starts later: the ranks' clocks disagree
records = []
outcome = train_loop(state, on_record=records.append)
torch.save(state.model.state_dict(), f"{out_dir}/rank{dinfo.rank}.pt")
with open(f"{out_dir}/rank{dinfo.rank}.json", "w") as fh:
    json.dump({"status": outcome.status, "steps": state.step, "world": dinfo.world_size,
               "data_seed": state.generator.initial_seed(), "dropout_seed": dropout_seed,
               "device": state.device.sentence, "dtype": state.device.dtype,
               "optimizers": [type(o).__name__ for o in state.optimizers],
               "final": bool(records[-1].get("final")), "elapsed_s": records[-1]["elapsed_s"],
               "losses": [r["train_loss"] for r in records], "steps_published": [r["step"] for r in records],
               "evaluated": [r["step"] for r in records if r["val_loss"] is not None],
               "sampled": [r["step"] for r in records if "sample" in r]}, fh)
torch.distributed.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(script: Path, args: list[str], timeout: float, nproc: int = 2) -> subprocess.CompletedProcess:
    """`script` under torchrun with `nproc` gloo processes on 127.0.0.1. A hang fails the test (timeout), and
    takes torchrun's workers with it: they run in torchrun's own process group, which is killed whole."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", str(script), *args]
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def run_two(tmp_path: Path, text: str, overrides: dict | None = None, options: dict | None = None,
            timeout: float = 180) -> list[dict]:
    """Train under torchrun with two gloo processes; return each rank's report. A hang fails the test (timeout)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    done = torchrun(script, [str(tmp_path), str(corpus), json.dumps(overrides or {}), json.dumps(options or {})],
                    timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


def assert_same_weights(tmp_path: Path) -> None:
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_two_gloo_processes_keep_identical_weights(tmp_path: Path, small_text: str) -> None:
    """Muon on the matrices and AdamW on the rest, agreed on both ranks; dtype "auto" with a probe that says bf16 on
    rank 0 only: the ranks must still agree on one precision."""
    reports = run_two(tmp_path, small_text, {"dtype": "auto", "dropout": 0.1, "optimizer": "muon", "muon_lr": 0.02},
                      {"split_probe": True})
    assert all(r["status"] == "finished" and r["steps"] == 8 and r["world"] == 2 for r in reports)
    assert reports[0]["optimizers"] == reports[1]["optimizers"] == ["AdamW", "Muon"]
    assert reports[0]["data_seed"] != reports[1]["data_seed"]  # each rank reads different batches ...
    assert reports[0]["losses"] == reports[1]["losses"]  # ... and they report the averaged loss
    assert reports[0]["losses"][-1] < reports[0]["losses"][0]
    assert "2 processes" in reports[0]["device"]
    assert reports[0]["dtype"] == reports[1]["dtype"] == "float32"  # bf16 only if every rank found it faster
    assert reports[0]["dropout_seed"] != reports[1]["dropout_seed"]  # own dropout masks, same initial weights:
    assert_same_weights(tmp_path)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_reading_back_every_k_steps_keeps_the_ranks_in_the_same_collectives(tmp_path: Path, small_text: str) -> None:
    """A read-back is a collective under torchrun, so it must fall on the same steps on every rank: a sample step
    (rank 0 alone draws the sample) reads back on both, as the GPU's read-back every 16 steps must."""
    reports = run_two(tmp_path, small_text, {"readback_every": 4, "sample_interval": 6, "max_steps": 14}, timeout=120)
    assert all(r["status"] == "finished" and r["steps"] == 14 for r in reports)
    assert reports[0]["losses"] == reports[1]["losses"] and len(reports[0]["losses"]) == 15
    assert_same_weights(tmp_path)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_a_time_budget_and_intervals_in_seconds_are_agreed_from_rank_0s_clock(tmp_path: Path, small_text: str) -> None:
    """A 3 s budget, and evaluations, samples and records counted in seconds, with the loss read back every 4 steps
    and rank 1's clock 0.7 s behind: each rank's own clock would stop or evaluate at other steps (and hang its
    partner in a collective); rank 0's, agreed at the read-backs, keeps both ranks on the same steps to the same
    final evaluation."""
    timed = {"max_steps": None, "time_budget": 3.0, "readback_every": 4, "eval_every_s": 0.5, "sample_every_s": 0.7,
             "record_every_s": 0.1}
    reports = run_two(tmp_path, small_text, timed, {"rank1_late": 0.7}, timeout=120)
    assert [r["status"] for r in reports] == ["finished", "finished"]
    assert reports[0]["steps"] == reports[1]["steps"] > 10
    assert reports[0]["final"] and reports[1]["final"]
    for key in ("steps_published", "evaluated", "losses"):
        assert reports[0][key] == reports[1][key], key
    assert len(reports[0]["evaluated"]) >= 3  # step 0, the end, and some between (rank 1 slept 0.7 s: 1 at least)
    # (not every evaluation falls on a read-back step: a short timed run also evaluates at the step count's own
    # interval, from the planned steps, which on two busy cores can be every 5; both ranks keep it all the same)
    assert len(reports[0]["sampled"]) >= 2 and not reports[1]["sampled"]  # rank 0 alone writes the samples
    assert len(reports[0]["steps_published"]) < reports[0]["steps"]  # records thinned: not one per step
    assert_same_weights(tmp_path)


FAILING = """
import sys
import engine.train.loop as loop
from engine.train import cli

corpus, out, failing_rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
real_step = loop.train_step


def step(state, batches):
    if state.dist.rank == failing_rank and state.step == 5:
        raise RuntimeError("this rank broke")
    return real_step(state, batches)


loop.train_step = step
sys.exit(cli.exit_code(cli.main(["--preset", "tiny", "--device", "cpu", "--corpus", corpus, "--out", out,
                                 "--max-steps", "40", "--quiet"])))
"""


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
@pytest.mark.parametrize("failing_rank", [1, 0])
def test_one_rank_failing_ends_the_whole_job(tmp_path: Path, small_text: str, failing_rank: int) -> None:
    """A rank that raises must not return and leave its partner waiting in a collective: the job ends, non-zero,
    and rank 0's summary says why (its own error, or that another process failed)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(small_text, encoding="utf-8")
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    done = torchrun(script, [str(corpus), str(tmp_path / "run"), str(failing_rank)], timeout=90)
    assert done.returncode != 0
    assert "this rank broke" in done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed"
    assert ("this rank broke" if failing_rank == 0 else "Another process of this run failed") in summary["message"]


RESUMING = """
import json, sys
import torch
from engine.train import cli, rng
from engine.train.distributed import setup_distributed
from engine.train.prepare import prepare
from engine.train.config import PRESETS

corpus, out, report = sys.argv[1], sys.argv[2], sys.argv[3]
if len(sys.argv) > 4:  # resume: report the random state each rank starts from
    dinfo = setup_distributed("cpu")
    config = PRESETS["tiny"].with_changes(device="cpu", dropout=0.1, max_steps=12)
    state = prepare(config, open(corpus, encoding="utf-8").read(), resume_from=out, dist_info=dinfo)
    torch.save(rng.rank_state(state.generator, state.device), f"{report}{dinfo.rank}.pt")
    torch.distributed.destroy_process_group()
    sys.exit(0)
sys.exit(cli.exit_code(cli.main(["--preset", "tiny", "--device", "cpu", "--corpus", corpus, "--out", out,
                                 "--max-steps", "6", "--set", "dropout=0.1", "--quiet"])))
"""


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_each_ranks_random_state_is_saved_and_restored(tmp_path: Path, small_text: str) -> None:
    """Rank 0 saves every rank's batch generator and dropout generator; a resume on two processes gives each its
    own back, and a resume on one process keeps rank 0's and says the count changed."""
    from engine.load.checkpoint import read_checkpoint
    from engine.train.config import PRESETS
    from engine.train.prepare import prepare

    corpus, run = tmp_path / "corpus.txt", tmp_path / "run"
    corpus.write_text(small_text, encoding="utf-8")
    script = tmp_path / "resuming.py"
    script.write_text(RESUMING)
    done = torchrun(script, [str(corpus), str(run), "unused"], timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = read_checkpoint(run)["rng"]
    assert saved["world_size"] == 2 and len(saved["ranks"]) == 2
    assert not torch.equal(saved["ranks"][0]["batches"], saved["ranks"][1]["batches"])
    assert not torch.equal(saved["ranks"][0]["torch"], saved["ranks"][1]["torch"])

    done = torchrun(script, [str(corpus), str(run), str(tmp_path / "resumed"), "resume"], timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        resumed = torch.load(tmp_path / f"resumed{rank}.pt", weights_only=True)
        for key in ("batches", "torch"):
            assert torch.equal(resumed[key], saved["ranks"][rank][key]), (rank, key)

    alone = prepare(PRESETS["tiny"].with_changes(device="cpu", dropout=0.1, max_steps=12), small_text,
                    resume_from=run)
    assert torch.equal(alone.generator.get_state(), saved["ranks"][0]["batches"])
    assert any("saved by 2 processes and resumes on 1" in note for note in alone.notes)
