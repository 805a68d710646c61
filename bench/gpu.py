"""GPU check: `python -m bench gpu` proves on a CUDA machine what CPU tests cannot, one line per check.

The unit tests run on CPUs and fake CUDA, so they show the decisions are right but not that the GPU paths work.
This runs them for real: bf16; torch.compile on the `gpu` preset; Muon; a budgeted run; no stalls; the lesson
preset on CUDA and the same run through the run manager's worker; runs on a Ray cluster at a quarter GPU each;
DDP reading the loss back every k steps; the peak probe's worker in bf16; and how many lesson runs one GPU holds
(bench.gpu_paths, bench.gpu_packing). Each check prints PASS, FAIL or SKIP with its figure, and the figures are
appended to docs/benchmarks.md. `--cpu-dry-run` runs the checks that mean something on a CPU, with toy models.

Exits non-zero when a check fails; on a machine without CUDA (and no dry run) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

import paths
from bench import gpu_packing, gpu_paths
from bench.gpu_paths import CheckFailed, CheckSkipped, Rows
from bench.report import append_section
from engine.train.config import PRESETS, TrainConfig
from engine.train.loop import train_loop
from engine.train.prepare import prepare
from engine.train.status import RunStatus

__all__ = ["CheckFailed", "CheckSkipped", "main", "run"]
NO_CUDA = "no CUDA device: nothing to check here (python -m bench gpu --cpu-dry-run runs the checks on the CPU)"


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
    return [("bf16", f"{info.dtype} chosen, a bf16 autocast matmul ran"
                     + (f" (compute capability {cc})" if info.type == "cuda" else "")),
            ("device", info.sentence), ("compute capability", cc),
            ("dtype chosen (bf16 only at 8.0+)", info.dtype), ("bf16 autocast matmul", "ok")]


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
    state = prepare(replace(config, compile=True), gpu_paths.corpus_text())
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
                            eval_interval=steps, sample_interval=0), gpu_paths.corpus_text())
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
    state = prepare(replace(config, max_steps=None, time_budget=time_budget, compile=True), gpu_paths.corpus_text())
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
                                eval_interval=10 * steps, readback_every=k), gpu_paths.corpus_text())
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
                            sample_interval=0), gpu_paths.corpus_text())
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


@dataclass(frozen=True)
class Plan:
    """What the checks train, where: a CUDA machine's presets, or the CPU dry run's toy models."""

    device: str  # "cuda" or "cpu"
    lesson: TrainConfig  # the lesson preset, or the tiny one with the lesson's options
    big: TrainConfig  # the gpu preset, or the tiny one
    n_gpus: int
    time_budget: float  # the budgeted run's seconds
    pack_counts: tuple[int, ...]
    pack_seconds: float
    ray_address: str | None

    @property
    def dry_run(self) -> bool:
        return self.device == "cpu"


def make_plan(dry_run: bool = False, time_budget: float = 60.0, ray_address: str | None = None,
              pack_counts: tuple[int, ...] | None = None, pack_seconds: float | None = None) -> Plan:
    """The real plan on CUDA; with `dry_run`, toy models on the CPU, short enough for a test."""
    if not dry_run:
        return Plan("cuda", replace(PRESETS["lesson"], device="cuda"), PRESETS["gpu"], torch.cuda.device_count(),
                    time_budget, pack_counts or (1, 2, 4, 8), pack_seconds or 15.0, ray_address)
    tiny = replace(PRESETS["tiny"], device="cpu", eval_batches=2, final_eval_batches=2)
    lesson = tiny.with_changes(rope=True, qk_norm=True, optimizer="muon", muon_split_qkv=True, muon_lr=0.02,
                               min_lr_frac=0.0)
    return Plan("cpu", lesson, tiny, 0, min(time_budget, 2.0), pack_counts or (1, 2), pack_seconds or 2.0,
                ray_address)


def _skip(reason: str) -> Callable[[], Rows]:
    def skipped() -> Rows:
        raise CheckSkipped(reason)
    return skipped


def checks(plan: Plan) -> list[tuple[str, Callable[[], Rows]]]:
    """Every check, in order; those this machine cannot run say why (SKIP)."""
    from engine.device import get_device

    gpu_only = "GPU only (a CPU dry run)"
    dry, n = plan.dry_run, plan.n_gpus
    ddp_device, ddp_preset = ("cuda", "lesson") if n >= 2 else ("cpu", "tiny" if dry else "lesson")
    one_gpu = "this machine has 1 GPU (NCCL refuses two ranks on one device)"
    return [
        ("bf16", lambda: check_bf16(plan.device)),
        ("torch.compile", _skip(gpu_only) if dry else lambda: check_compile(plan.big)),
        ("Muon", lambda: check_muon(replace(plan.big, muon_lr=0.02) if dry else plan.big, steps=20 if dry else 60)),
        ("budgeted run", _skip(gpu_only) if dry else lambda: check_budget(plan.big, plan.time_budget)),
        ("no stalls", _skip(gpu_only) if dry else lambda: check_no_stalls(plan.big)),
        ("lesson preset", lambda: gpu_paths.check_lesson_preset(plan.lesson, steps=15 if dry else 300)),
        ("worker path", lambda: gpu_paths.check_worker_path(plan.lesson, time_budget=1.5 if dry else 10.0)),
        ("Ray, fractional GPU", lambda: gpu_paths.check_ray(plan.lesson, plan.ray_address, runs=2 if dry else 4,
                                                             time_budget=3.0 if dry else 10.0)),
        ("DDP read-back", lambda: gpu_paths.check_ddp_readback(ddp_preset, ddp_device, steps=12 if dry else 40)),
        ("second GPU", _skip(gpu_only if dry else one_gpu) if n < 2 else lambda: check_second_gpu(plan.big)),
        ("2-GPU NCCL run", _skip(gpu_only if dry else one_gpu) if n < 2 else check_nccl),
        ("peak probe", lambda: gpu_paths.check_peak(plan.device, get_device(plan.device).dtype,
                                                    **({"size": 256, "budget_s": 0.5} if dry else {}))),
        ("runs per GPU", lambda: gpu_packing.check_packing(plan.lesson, plan.pack_counts, plan.pack_seconds)),
    ]


def run_checks(checks: list[tuple[str, Callable[[], Rows]]]) -> tuple[Rows, list[str]]:
    """Run each check and print one line for it (PASS, FAIL or SKIP, its headline figure, its seconds), then its
    other figures indented; returns all rows and the names of the checks that failed."""
    rows: Rows = []
    failed: list[str] = []
    for name, check in checks:
        t0 = time.perf_counter()
        try:
            got, verdict = check(), "PASS"
        except CheckSkipped as why:
            got, verdict = [(name, f"skipped: {why}")], "SKIP"
        except Exception as err:  # noqa: BLE001 - a failed check is a result to report, not a crash
            traceback.print_exc()
            failed.append(name)
            got, verdict = [(name, f"FAILED: {type(err).__name__}: {err}")], "FAIL"
        headline = " ".join(got[0][1].removeprefix("skipped: ").split())[:400] if got else ""  # one line
        print(f"{verdict}  {name}: {headline} ({time.perf_counter() - t0:.1f} s)", flush=True)
        for measure, value in got[1:]:
            print(f"      {measure.strip()}: {value}", flush=True)
        rows += got
    return rows, failed


def run(time_budget: float = 60.0, write: bool = True, dry_run: bool = False, ray_address: str | None = None,
        pack_counts: tuple[int, ...] | None = None, pack_seconds: float | None = None) -> int:
    """Run every check; append the figures (not a dry run's, unless `write` says so); return the exit code."""
    if not dry_run and not torch.cuda.is_available():
        print(NO_CUDA)
        return 0
    plan = make_plan(dry_run, time_budget, ray_address, pack_counts, pack_seconds)
    t0 = time.perf_counter()
    rows, failed = run_checks(checks(plan))
    rows.append(("checks failed", ", ".join(failed) if failed else "none"))
    rows.append(("all checks took", f"{time.perf_counter() - t0:.0f} s"))
    if write:
        append_section("GPU checks (bench.gpu)" + (", CPU dry run" if dry_run else ""), rows)
    print("GPU checks: " + (f"FAILED: {', '.join(failed)}" if failed else "all passed or skipped"), flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bench gpu [--cpu-dry-run] [--ray-address ADDR] ...`; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run the checks that mean something on a CPU, with toy models (writes nothing)")
    parser.add_argument("--time-budget", type=float, default=60.0, help="seconds of the budgeted gpu-preset run")
    parser.add_argument("--ray-address", default=None, help="a Ray cluster (default: the course's configured one)")
    parser.add_argument("--pack-counts", type=int, nargs="+", default=None, help="runs at once (default 1 2 4 8)")
    parser.add_argument("--pack-seconds", type=float, default=None, help="each packed run's budget (default 15)")
    parser.add_argument("--no-write", action="store_true", help="do not append the figures to docs/benchmarks.md")
    args = parser.parse_args(argv)
    return run(args.time_budget, write=not (args.no_write or args.cpu_dry_run), dry_run=args.cpu_dry_run,
               ray_address=args.ray_address, pack_counts=tuple(args.pack_counts) if args.pack_counts else None,
               pack_seconds=args.pack_seconds)


if __name__ == "__main__":
    sys.exit(main())
