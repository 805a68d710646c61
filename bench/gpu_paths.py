"""The GPU check's paths a learner's run takes: `python -m bench gpu` runs each, one line per check.

The lesson preset trained directly (rotary positions, QK-norm, Muon on split Q, K and V), the same run through the
run manager's worker process, runs on a Ray cluster at a fraction of a GPU each (engine.runs.ray_backend), DDP
under torchrun with the loss read back every k steps, and the peak probe's worker (engine.cost.peak). Each takes a
`TrainConfig` and a device, so `--cpu-dry-run` runs the same code on the CPU with toy models; each returns rows
of figures (the first is the check's headline) or raises `CheckFailed`, or `CheckSkipped` with the reason.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

import paths
from engine.train.config import TrainConfig
from engine.train.status import RunStatus

Rows = list[tuple[str, str]]


class CheckFailed(Exception):
    """A check ran but its result is wrong (the message says what)."""


class CheckSkipped(Exception):
    """A check that cannot run here (the message says why): no second GPU, no Ray cluster, ..."""


def corpus_text() -> str:
    return paths.DEFAULT_CORPUS.read_text(encoding="utf-8")


def _falling(first: float | None, last: float | None, what: str) -> str:
    if first is None or last is None or not (math.isfinite(first) and math.isfinite(last)):
        raise CheckFailed(f"{what} is not finite: {first} -> {last}")
    if not last < first:
        raise CheckFailed(f"{what} did not fall: {first:.3f} -> {last:.3f}")
    return f"{first:.3f} -> {last:.3f}"


def check_lesson_preset(config: TrainConfig, steps: int = 300) -> Rows:
    """The lesson preset's options trained for `steps` steps, as a learner's run (no compile): loss finite and
    falling, the options really on."""
    from engine.train.loop import train_loop
    from engine.train.prepare import prepare

    model = config.model
    if not (model.rope and model.qk_norm and config.optimizer == "muon" and config.muon_split_qkv):
        raise CheckFailed("the config lacks one of rotary positions, QK-norm, Muon on split Q/K/V")
    state = prepare(replace(config, max_steps=steps, time_budget=None, compile=False), corpus_text())
    t0 = time.perf_counter()
    outcome = train_loop(state)
    if state.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if outcome.status != RunStatus.FINISHED:
        raise CheckFailed(f"the run ended {outcome.status}: {outcome.message}")
    s = outcome.summary
    val = _falling(state.metrics[0]["val_loss"], s["final_val_loss"], "validation loss")
    used = "+".join(type(o).__name__ for o in state.optimizers)
    return [("lesson preset", f"{steps} steps in {seconds:.1f} s ({steps / seconds:.0f} steps/s); val loss {val}"),
            ("  optimizers, precision", f"{used}, {state.device.dtype}" + (f" ({' '.join(state.notes)})"
                                                                          if state.notes else "")),
            ("  device sentence", state.device.sentence)]


def check_worker_path(config: TrainConfig, time_budget: float = 10.0, timeout: float = 300.0) -> Rows:
    """A learner's run as the course starts it: RunManager(workers="process") -> python -m engine.runs.worker."""
    from engine.runs.manager import RunManager

    with tempfile.TemporaryDirectory() as tmp:
        manager = RunManager(runs_root=tmp, workers="process", max_concurrent=1, heartbeat_timeout=3600)
        run_id = manager.submit(replace(config, time_budget=time_budget, max_steps=None), corpus_text(),
                                label="gpu-check")
        t0 = time.perf_counter()
        snap = manager.wait(run_id, timeout=timeout)
        seconds = time.perf_counter() - t0
        folder = Path(snap.run_dir)
        saved = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if snap.status != RunStatus.FINISHED:
        raise CheckFailed(f"the worker's run ended {snap.status}: {snap.message}")
    if "ckpt.pt" not in saved or "summary.json" not in saved:
        raise CheckFailed(f"the run folder holds {saved}, not ckpt.pt and summary.json")
    if config.device.startswith("cuda") and "GPU" not in snap.device_sentence:
        raise CheckFailed(f"the worker trained elsewhere: {snap.device_sentence}")
    s = snap.summary or {}
    return [("worker path", f"{s.get('steps', 0):,} steps in a {time_budget:g} s budget, "
                            f"{(s.get('tokens_per_s') or 0):,.0f} tokens/s, val loss {s.get('final_val_loss', math.nan):.3f};"
                            f" {seconds:.0f} s with the worker's start-up"),
            ("  worker's device sentence", snap.device_sentence)]


def check_ray(config: TrainConfig, address: str | None = None, runs: int = 4, gpus_per_run: float = 0.25,
              time_budget: float = 10.0, timeout: float = 300.0) -> Rows:
    """`runs` runs on a Ray cluster at `gpus_per_run` GPU each (0 on the CPU): all must finish with a falling
    loss; the figure is how many trained at once."""
    try:
        import ray  # noqa: F401 - only to say so when it is missing

        from engine.runs import ray_backend
    except ImportError as err:
        raise CheckSkipped(f"ray is not installed here ({err}): pip install -r requirements-class.txt") from err
    address = address or ray_backend.ray_address()
    if not address:
        raise CheckSkipped(f"no Ray cluster configured: set {ray_backend.RAY_ADDRESS_VAR} or pass --ray-address")
    from engine.runs.worker import make_job
    from engine.transform.tokenization import CharTokenizer

    text = corpus_text()
    gpus = gpus_per_run if config.device.startswith("cuda") else 0.0
    backend = ray_backend.RayBackend(address, gpus_per_run=gpus, cpus_per_run=1.0)
    stamp = f"gpu-check-{os.getpid()}-{int(time.time())}"
    ids = [f"{stamp}-{i}" for i in range(runs)]
    run_config = replace(config, time_budget=time_budget, max_steps=None)
    paths.runs_dir().mkdir(parents=True, exist_ok=True)  # the storage every node of the cluster sees
    with tempfile.TemporaryDirectory(prefix="gpu-check-", dir=paths.runs_dir()) as tmp:
        for run_id in ids:
            backend.launch(run_id, make_job(run_config, text, CharTokenizer.from_text(text), None,
                                            Path(tmp) / run_id, heartbeat_timeout=1e9))
        cursors, losses, done = dict.fromkeys(ids, 0), {i: [] for i in ids}, {}
        most, deadline = 0, time.monotonic() + timeout
        try:
            while len(done) < runs and time.monotonic() < deadline:
                most = max(most, sum(backend.status(i) == "running" for i in ids if i not in done))
                for run_id in ids:
                    batch, cursors[run_id] = backend.messages(run_id, cursors[run_id])
                    for m in batch:
                        if m.get("event") == "record" and m["record"].get("train_loss") is not None:
                            losses[run_id].append(m["record"]["train_loss"])
                        elif m.get("event") == "done":
                            done[run_id] = m
                time.sleep(0.5)
        finally:
            for run_id in ids:
                if run_id not in done:
                    backend.kill(run_id)
                backend.release(run_id)
    if len(done) < runs:
        raise CheckFailed(f"{runs - len(done)} of {runs} Ray runs did not end within {timeout:g} s")
    bad = {i: m["status"] for i, m in done.items() if m["status"] != RunStatus.FINISHED}
    if bad:
        raise CheckFailed(f"Ray runs ended {sorted(set(bad.values()))}: {next(iter(done.values()))['message']}")
    falls = [_falling(losses[i][0] if losses[i] else None, losses[i][-1] if losses[i] else None, "train loss")
             for i in ids]
    return [("Ray, fractional GPU", f"{runs} runs at {gpus:g} GPU each: up to {most} trained at once, all finished"),
            ("  train loss per run", "; ".join(falls)), ("  cluster", address)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_ddp_readback(preset: str, device: str, nproc: int = 2, every: int = 4, steps: int = 40,
                       timeout: float = 240.0) -> Rows:
    """torchrun with `nproc` ranks reading the loss back every `every` steps, samples at a step that is not a
    multiple of it: the ranks must agree on every decision and the job must end (a rank left alone in a collective
    hangs until `timeout`). NCCL across GPUs, gloo on the CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--nnodes=1",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "engine.train", "--preset", preset,
               "--device", device, "--max-steps", str(steps), "--set", f"readback_every={every}",
               "--set", f"sample_interval={every + 2}", "--set", f"eval_interval={2 * every + 2}",
               "--out", str(Path(tmp) / "run"), "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(paths.ROOT), "OMP_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise CheckFailed(f"the {nproc}-process run did not end within {timeout:g} s: ranks in different "
                              "collectives (a hang)") from err
        seconds = time.perf_counter() - t0
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        errors = [ln for ln in done.stderr.splitlines() if "Error:" in ln or "Exception:" in ln]
        raise CheckFailed(f"torchrun exited {done.returncode}: {(errors or [done.stderr.strip()[-600:]])[-1]}")
    result = json.loads(lines[-1])
    if result["status"] != RunStatus.FINISHED or result["steps"] != steps:
        raise CheckFailed(f"the run ended {result['status']} at step {result['steps']}: {result['message']}")
    backend = "NCCL" if device.startswith("cuda") else "gloo"
    return [(f"DDP, read-back every {every}", f"{nproc} ranks ({backend}, {preset} preset on {device}): {steps} steps, "
                                              f"val loss {result['val_loss']:.3f}, {seconds:.0f} s with start-up"),
            ("  device sentence", str(result["device"]))]


def check_peak(device: str, dtype: str, **probe_options: float) -> Rows:
    """The peak probe in its worker process (engine.cost.peak), kept in a scratch runs folder: in `dtype`, the
    precision runs use on `device`."""
    from engine.cost import peak

    with tempfile.TemporaryDirectory() as tmp:
        kept = peak.measure_in_worker(device, tmp, **probe_options)
        again = peak.measured_peak(device, tmp)
    if again != kept:
        raise CheckFailed("the worker's measurement was not kept in peak.json")
    if kept.dtype != dtype:
        raise CheckFailed(f"measured in {kept.dtype}, but runs here train in {dtype}")
    if device.startswith("cuda") and dtype == "bfloat16" and kept.flops_per_s < 20e12:
        raise CheckFailed(f"{kept.flops_per_s / 1e12:.1f} TFLOP/s in bf16: the tensor cores are not in use")
    return [("peak probe", f"{kept.flops_per_s / 1e12:.2f} TFLOP/s in {kept.dtype} on {kept.device_name} "
                           f"({kept.size}-square matmuls, {kept.inner} per timing, best of {kept.repeats})"),
            ("  median timing's rate", f"{2 * kept.size**3 * kept.inner / kept.median_s / 1e12:.2f} TFLOP/s")]
