"""GPU check: `python -m bench gpu` proves on a CUDA machine, in under 5 minutes, what CPU tests cannot.

The unit tests run on CPUs and fake CUDA with monkeypatched queries, so they show the decisions are right but not
that the GPU paths work. This runs them for real and appends the figures to docs/benchmarks.md: bf16 (the compute
capability, the dtype engine.device picks, a bf16 autocast matmul); torch.compile on the `gpu` preset's model (its
compile time, its step against eager mode); Muon (batched Newton-Schulz in bf16, or in float32 where bf16 is not
native); the `gpu` preset for `--time-budget` seconds with compile on, as a learner's run would train; no stalls
(the token array on the GPU, the padded vocabulary, the loss read back every step against every 16); and with two
or more GPUs, "cuda:1" training on GPU 1 and a 2-process NCCL run under torchrun.

Exits non-zero when a check fails; on a machine without CUDA it says so and exits 0 without writing anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

import paths
from bench.report import append_section
from engine.train.config import PRESETS, TrainConfig
from engine.train.loop import train_loop
from engine.train.prepare import prepare
from engine.train.status import RunStatus
from paths import DEFAULT_CORPUS

Rows = list[tuple[str, str]]
NO_CUDA = "no CUDA GPU here: nothing to check"


class CheckFailed(Exception):
    """A check ran but its result is wrong (the message says what)."""


def check_bf16(device: str = "cuda") -> Rows:
    """The dtype rule (bf16 only where native) and one bf16 autocast matmul on the GPU."""
    from engine.device import cuda_native_bf16, get_device

    info = get_device(device)
    native = cuda_native_bf16(info.index or 0) if info.type == "cuda" else info.native_bf16
    expected = "bfloat16" if native else "float32"
    if info.type == "cuda" and info.dtype != expected:
        raise CheckFailed(f"engine.device chose {info.dtype}, expected {expected}")
    a = torch.randn(1024, 1024, device=info.device)
    with torch.autocast(device_type=info.type, dtype=torch.bfloat16):
        out = a @ a
    if out.dtype != torch.bfloat16:
        raise CheckFailed(f"a matmul under bf16 autocast returned {out.dtype}")
    cc = ".".join(map(str, torch.cuda.get_device_capability(info.index or 0))) if info.type == "cuda" else "-"
    return [("device", info.sentence), ("compute capability", cc),
            ("dtype chosen (bf16 only at 8.0+)", info.dtype), ("bf16 autocast matmul", "ok")]


def _text() -> str:
    return DEFAULT_CORPUS.read_text(encoding="utf-8")


def _ms_per_step(model: torch.nn.Module, state, steps: int) -> float:
    """Mean milliseconds of a forward + backward of `model` on the run's batches (synchronised at both ends)."""
    cfg = state.config
    g = torch.Generator().manual_seed(0)
    x, y = state.data.get_batch("train", cfg.batch_size, cfg.model.block_size, g, state.device.device)
    sync = torch.cuda.synchronize if state.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        with state.device.autocast():
            _, loss = model(x, y)
        loss.backward()
    sync()
    state.model.zero_grad(set_to_none=True)
    return 1000 * (time.perf_counter() - t0) / steps


def check_compile(config: TrainConfig, steps: int = 20) -> Rows:
    """torch.compile through prepare()'s own path (one trial batch, eager fallback) and its speed-up."""
    state = prepare(replace(config, compile=True), _text())
    note = " ".join(state.notes)
    if state.train_model is state.model:
        raise CheckFailed(f"torch.compile fell back to eager: {note}")
    _ms_per_step(state.train_model, state, 3)  # warm both up: allocator, autotuning, any recompile
    _ms_per_step(state.model, state, 3)
    compiled = _ms_per_step(state.train_model, state, steps)
    eager = _ms_per_step(state.model, state, steps)
    return [("torch.compile", note), ("forward+backward, eager", f"{eager:.1f} ms"),
            ("forward+backward, compiled", f"{compiled:.1f} ms ({eager / compiled:.2f}x)")]


def check_muon(config: TrainConfig, steps: int = 60) -> Rows:
    """A short Muon run: it must learn (loss falls, stays finite); its notes say if it orthogonalised in float32."""
    state = prepare(replace(config, optimizer="muon", max_steps=steps, time_budget=None, compile=False,
                            eval_interval=steps, sample_interval=0), _text())
    t0 = time.perf_counter()
    outcome = train_loop(state)
    seconds = time.perf_counter() - t0
    s = outcome.summary
    if outcome.status != RunStatus.FINISHED:
        raise CheckFailed(f"the Muon run ended {outcome.status}: {outcome.message}")
    if not s["final_val_loss"] < state.metrics[0]["val_loss"]:
        raise CheckFailed(f"validation loss did not fall: {state.metrics[0]['val_loss']:.3f} -> {s['final_val_loss']:.3f}")
    used = "+".join(type(o).__name__ for o in state.optimizers)
    return [("Muon run", f"{steps} steps in {seconds:.1f} s with {used}; val loss "
                         f"{state.metrics[0]['val_loss']:.3f} -> {s['final_val_loss']:.3f}"
             + (f" ({' '.join(state.notes)})" if state.notes else ""))]


def check_budget(config: TrainConfig, time_budget: float) -> Rows:
    """The `gpu` preset for a wall-clock budget, compiled, as a learner's run trains."""
    t0 = time.perf_counter()
    state = prepare(replace(config, max_steps=None, time_budget=time_budget, compile=True), _text())
    setup_s = time.perf_counter() - t0
    outcome = train_loop(state)
    s = outcome.summary
    if outcome.status != RunStatus.FINISHED:
        raise CheckFailed(f"the budgeted run ended {outcome.status}: {outcome.message}")
    if s["elapsed_s"] > 1.05 * time_budget + 1.0:
        raise CheckFailed(f"the run took {s['elapsed_s']:.1f} s of a {time_budget:g} s budget")
    return [(f"budgeted run ({time_budget:g} s)", f"{s['steps']:,} steps, {s['tokens_per_s']:,.0f} tokens/s, "
                                                   f"val loss {s['final_val_loss']:.4f}, {s['elapsed_s']:.1f} s"),
            ("  setup before the clock (model, data, compile)", f"{setup_s:.1f} s"),
            ("  device sentence", state.device.sentence)]


def check_no_stalls(config: TrainConfig, steps: int = 200) -> Rows:
    """The data lives on the GPU, the table is padded, and reading the loss back every 16 steps is not slower
    than every step (eager, so compile time does not blur it)."""
    ms: dict[int, float] = {}
    state = None
    for k in (1, 16, 1, 16):  # interleaved: the second of each pair is the one kept (warm)
        state = prepare(replace(config, max_steps=steps, time_budget=None, compile=False, sample_interval=0,
                                eval_interval=10 * steps, readback_every=k), _text())
        records: list[dict] = []
        train_loop(state, on_record=records.append)
        if state.device.type == "cuda":
            torch.cuda.synchronize()
        ms[k] = 1000 * (records[-2]["elapsed_s"] - records[1]["elapsed_s"]) / max(1, len(records) - 3)
    assert state is not None
    if state.data.train.device.type != "cuda":
        raise CheckFailed(f"the token array stayed on {state.data.train.device}")
    rows = state.model.transformer.wte.weight.size(0)
    if rows % 64:
        raise CheckFailed(f"the token table has {rows} rows, not a multiple of 64")
    return [("token array on the GPU, table rows", f"yes, {rows} for {state.tokenizer.vocab_size} tokens"),
            ("ms per step, loss read back every step vs every 16", f"{ms[1]:.2f} vs {ms[16]:.2f} "
                                                                   f"({ms[1] / ms[16]:.2f}x)")]


def check_second_gpu(config: TrainConfig) -> Rows:
    """device "cuda:1" trains on GPU 1 (the run manager gives each run slot its own GPU)."""
    before = torch.cuda.memory_allocated(1)
    state = prepare(replace(config, device="cuda:1", max_steps=2, time_budget=None, compile=False,
                            sample_interval=0), _text())
    train_loop(state)
    where = {p.device for p in state.model.parameters()}
    if where != {torch.device("cuda", 1)} or torch.cuda.memory_allocated(1) <= before:
        raise CheckFailed(f"a run on cuda:1 put its weights on {where}")
    return [("device cuda:1", state.device.sentence)]


def check_nccl(time_budget: float = 30.0) -> Rows:
    """Two processes, one GPU each, under torchrun: the run must end cleanly (a rank left waiting in a collective
    would hang until the timeout) with a result."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m",
               "engine.train.cli", "--preset", "gpu", "--time-budget", str(time_budget), "--out", str(Path(tmp) / "run"),
               "--quiet"]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True, timeout=time_budget + 150)
        except subprocess.TimeoutExpired as err:
            raise CheckFailed(f"the 2-GPU run did not end within {time_budget + 150:.0f} s (a hang?)") from err
        seconds = time.perf_counter() - t0
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise CheckFailed(f"torchrun exited {done.returncode}: {done.stderr.strip()[-500:]}")
    result = json.loads(lines[-1])
    if result["status"] != RunStatus.FINISHED:
        raise CheckFailed(f"the 2-GPU run ended {result['status']}: {result['message']}")
    return [(f"2 GPUs, NCCL, {time_budget:g} s budget", f"{result['steps']:,} steps, {result['tokens_per_s']:,.0f} "
                                                          f"tokens/s, val loss {result['val_loss']:.4f}, "
                                                          f"{seconds:.0f} s with start-up"),
            ("  device sentence", str(result["device"]))]


def run_checks(checks: list[tuple[str, Callable[[], Rows]]]) -> tuple[Rows, list[str]]:
    """Run each check, printing as it goes; returns all rows and the names of the checks that failed."""
    rows: Rows = []
    failed: list[str] = []
    for name, check in checks:
        t0 = time.perf_counter()
        print(f"-- {name} ...", flush=True)
        try:
            got = check()
        except Exception as err:  # noqa: BLE001 - a failed check is a result to report, not a crash
            traceback.print_exc()
            failed.append(name)
            got = [(name, f"FAILED: {type(err).__name__}: {err}")]
        for measure, value in got:
            print(f"   {measure}: {value}", flush=True)
        rows += got
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    return rows, failed


def run(time_budget: float = 60.0, write: bool = True) -> int:
    """Run every check this machine has the GPUs for; append the figures; return the exit code."""
    if not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    config = PRESETS["gpu"]
    n = torch.cuda.device_count()
    checks: list[tuple[str, Callable[[], Rows]]] = [
        ("bf16", check_bf16),
        ("torch.compile", lambda: check_compile(config)),
        ("Muon", lambda: check_muon(config)),
        ("budgeted run", lambda: check_budget(config, time_budget)),
        ("no stalls", lambda: check_no_stalls(config)),
    ]
    if n >= 2:
        checks += [("second GPU", lambda: check_second_gpu(config)), ("2-GPU NCCL run", check_nccl)]
    t0 = time.perf_counter()
    rows, failed = run_checks(checks)
    if n < 2:
        rows.append(("2-GPU NCCL run", "skipped: this machine has 1 GPU"))
        print("2-GPU NCCL run skipped: this machine has 1 GPU", flush=True)
    rows.append(("checks failed", ", ".join(failed) if failed else "none"))
    rows.append(("all checks took", f"{time.perf_counter() - t0:.0f} s"))
    if write:
        append_section("GPU checks (bench.gpu)", rows)
    print("GPU checks: " + (f"FAILED: {', '.join(failed)}" if failed else "all passed"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run())
