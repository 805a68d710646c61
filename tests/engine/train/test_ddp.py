"""Scale-out: the trainer under torchrun with DistributedDataParallel (gloo, two CPU processes).

Each process trains on its own random batches; DDP averages the gradients, so both must end with the same
weights. The worker script below is what `torchrun -m engine.train` does, minus the command line.
"""

from __future__ import annotations

import json
import os
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
               "losses": [r["train_loss"] for r in records]}, fh)
torch.distributed.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two(tmp_path: Path, text: str, overrides: dict | None = None, options: dict | None = None,
            timeout: float = 180) -> list[dict]:
    """Train under torchrun with two gloo processes; return each rank's report. A hang fails the test (timeout)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={free_port()}", str(script), str(tmp_path), str(corpus), json.dumps(overrides or {}),
         json.dumps(options or {})],
        cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True,
    )
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
    # dtype "auto" with a probe that says bf16 on rank 0 only: the ranks must still agree on one precision
    reports = run_two(tmp_path, small_text, {"dtype": "auto", "dropout": 0.1}, {"split_probe": True})
    assert all(r["status"] == "finished" and r["steps"] == 8 and r["world"] == 2 for r in reports)
    assert reports[0]["data_seed"] != reports[1]["data_seed"]  # each rank reads different batches ...
    assert reports[0]["losses"] == reports[1]["losses"]  # ... and they report the averaged loss
    assert reports[0]["losses"][-1] < reports[0]["losses"][0]
    assert "2 processes" in reports[0]["device"]
    assert reports[0]["dtype"] == reports[1]["dtype"] == "float32"  # bf16 only if every rank found it faster
    assert reports[0]["dropout_seed"] != reports[1]["dropout_seed"]  # own dropout masks, same initial weights:
    assert_same_weights(tmp_path)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_time_budget_ends_both_ranks_at_the_same_step(tmp_path: Path, small_text: str) -> None:
    """Each rank reads its own clock, and rank 1's starts 0.7 s late: the stop must still be agreed, so both
    ranks run the same steps and the same final evaluation (a rank stopping alone would hang its partner)."""
    reports = run_two(tmp_path, small_text, {"max_steps": None, "time_budget": 3.0}, {"rank1_late": 0.7})
    assert [r["status"] for r in reports] == ["finished", "finished"]
    assert reports[0]["steps"] == reports[1]["steps"] > 10
    assert reports[0]["final"] and reports[1]["final"]
    assert reports[0]["losses"] == reports[1]["losses"]
    assert_same_weights(tmp_path)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_muon_under_ddp_keeps_identical_weights(tmp_path: Path, small_text: str) -> None:
    reports = run_two(tmp_path, small_text, {"optimizer": "muon", "muon_lr": 0.02, "max_steps": 10})
    assert all(r["status"] == "finished" and r["steps"] == 10 for r in reports)
    assert reports[0]["optimizers"] == reports[1]["optimizers"] == ["AdamW", "Muon"]
    assert reports[0]["losses"][-1] < reports[0]["losses"][0]
    assert_same_weights(tmp_path)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_reading_back_every_k_steps_keeps_the_ranks_in_the_same_collectives(tmp_path: Path, small_text: str) -> None:
    """A read-back is a collective under torchrun, so it must fall on the same steps on every rank: a sample step
    (rank 0 alone draws the sample) reads back on both, as the GPU's read-back every 16 steps must."""
    reports = run_two(tmp_path, small_text, {"readback_every": 4, "sample_interval": 6, "max_steps": 14}, timeout=120)
    assert all(r["status"] == "finished" and r["steps"] == 14 for r in reports)
    assert reports[0]["losses"] == reports[1]["losses"] and len(reports[0]["losses"]) == 15
    assert_same_weights(tmp_path)
