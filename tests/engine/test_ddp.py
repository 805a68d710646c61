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

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import json, sys
from dataclasses import replace
import torch
from engine.config import PRESETS
from engine.distributed import setup_distributed
from engine.loop import train_loop
from engine.prepare import prepare

out_dir, corpus = sys.argv[1], sys.argv[2]
dinfo = setup_distributed("cpu")
state = prepare(replace(PRESETS["tiny"], max_steps=8, device="cpu"), open(corpus, encoding="utf-8").read(),
                dist_info=dinfo)
records = []
outcome = train_loop(state, on_record=records.append)
torch.save(state.model.state_dict(), f"{out_dir}/rank{dinfo.rank}.pt")
with open(f"{out_dir}/rank{dinfo.rank}.json", "w") as fh:
    json.dump({"status": outcome.status, "steps": state.step, "world": dinfo.world_size,
               "data_seed": state.generator.initial_seed(), "device": state.device.sentence,
               "losses": [r["train_loss"] for r in records]}, fh)
torch.distributed.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed support")
def test_two_gloo_processes_keep_identical_weights(tmp_path: Path, small_text: str) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(small_text, encoding="utf-8")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={free_port()}", str(script), str(tmp_path), str(corpus)],
        cwd=REPO, env=env, check=True, timeout=180, capture_output=True,
    )
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["status"] == "finished" and r["steps"] == 8 and r["world"] == 2 for r in reports)
    assert reports[0]["data_seed"] != reports[1]["data_seed"]  # each rank reads different batches ...
    assert reports[0]["losses"] == reports[1]["losses"]  # ... and they report the averaged loss
    assert reports[0]["losses"][-1] < reports[0]["losses"][0]
    assert "2 processes" in reports[0]["device"]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name
