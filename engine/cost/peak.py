"""Each device's peak FLOP/s, measured once in a worker process and kept: the denominator of a run's utilisation.

The probe runs as `python -m engine.cost.peak`, never in the web server: that process is configured as a run's
(`engine.device.get_device`) and multiplies in the runs' precision there (bf16 on a GPU with native bf16), with
matrices big enough to fill a GPU (`SIZES`). The fastest timing is the peak, so a GPU that small runs share still
gives the probe moments alone; a CPU is not probed while a run trains (the run would slow, the probe read low).
Kept in `peak.json` in the runs folder, one entry per device *name* ("NVIDIA H100 80GB HBM3", the CPU's model),
so each kind of device is measured once; read back through memory keyed by the file's stamp (a polling page costs
one `stat`). A missing or broken file or entry reads as "not measured yet" (None). docs/architecture.md, "The peak
probe", says why each choice.

>>> import tempfile
>>> measured_peak("cpu", tempfile.mkdtemp()) is None
True
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

import paths
from engine import device as device_mod
from engine.files import write_text
from engine.runs.manager import RunManager, get_manager

PEAK_FILE = "peak.json"
SIZES = {"cuda": 8192, "mps": 4096, "cpu": 2048}  # n of the n x n matrices: 2n^3 FLOPs, enough to fill the device
INNER = {"cuda": 8, "mps": 4, "cpu": 1}  # matmuls per timing: a GPU's 8192-square bf16 matmul takes ~1-2 ms
WORKER_TIMEOUT_S = 300.0  # importing torch, starting CUDA and probing take seconds; a hung probe must not hang us
RETRY_AFTER_S = 600.0  # a probe that failed is not started again by ensure_peak for this long


@dataclass(frozen=True)
class MeasuredPeak:
    """One device's peak as it was kept."""

    device_name: str  # "AMD EPYC 7B13", "NVIDIA H100 80GB HBM3": what the file is keyed by
    device: str  # where it was measured: "cpu", "cuda:0"
    dtype: str  # the matmuls' precision: "bfloat16" or "float32", as runs train there
    size: int  # n of the n x n matrices
    inner: int  # matmuls per timing
    repeats: int
    seconds: list[float]  # one per timing
    best_s: float
    median_s: float
    flops_per_s: float  # 2 n^3 inner / best_s
    threads: int  # torch's CPU threads in the probe's process
    measured_at: float  # time.time()


class PeakBusy(RuntimeError):
    """Raised instead of probing a CPU while a run trains: the probe would slow it down and read low."""


_lock = threading.Lock()  # guards the two dicts below (Streamlit runs each session in a thread)
_memory: dict[str, tuple[tuple[int, int], dict[str, MeasuredPeak]]] = {}  # path -> (file stamp, name -> peak)
_in_flight: dict[str, threading.Thread] = {}  # device name -> ensure_peak's probe under way
_failed: dict[str, tuple[float, str]] = {}  # device name -> (time.monotonic() it failed, why)


def peak_path(root: Path | str | None = None) -> Path:
    """The file the peaks are kept in: `peak.json` in the runs folder (the run manager's, unless given)."""
    return Path(root if root is not None else get_manager().runs_root) / PEAK_FILE


@functools.lru_cache(maxsize=16)
def device_name(device: str) -> str:
    """What the device is called: the GPU's name, or the CPU's model (asked once per process)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return "Apple GPU"
    return device_mod._cpu_name()  # the name the training process's device sentence uses


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _parse_entry(name: str, raw: Any) -> MeasuredPeak | None:
    """One device's entry, or None if it is not the shape we write (a hand edit, an older version)."""
    if not isinstance(raw, dict) or set(raw) != {f.name for f in fields(MeasuredPeak)}:
        return None
    try:
        peak = MeasuredPeak(**raw)
    except TypeError:
        return None
    numbers = (peak.best_s, peak.median_s, peak.flops_per_s, peak.measured_at, peak.size, peak.inner, peak.threads)
    if (not all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in numbers)
            or not isinstance(peak.seconds, list) or peak.device_name != name
            or peak.dtype not in ("bfloat16", "float32")):
        return None
    return peak


def _read(path: Path) -> dict[str, MeasuredPeak]:
    """Every well-formed entry of the file; {} if it is absent or not JSON."""
    stamp = _stamp(path)
    if stamp is None:
        return {}
    cached = _memory.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = None
    peaks = {}
    if isinstance(raw, dict):
        peaks = {n: p for n, entry in raw.items() if (p := _parse_entry(n, entry)) is not None}
    _memory[str(path)] = (stamp, peaks)
    return peaks


def measured_peak(device: str = "cpu", root: Path | str | None = None) -> MeasuredPeak | None:
    """The peak kept for `device`'s kind ("cpu", "cuda:0"), or None if it has not been measured (or the file is
    broken). Cheap enough for every poll of a live page: one `stat` when nothing changed."""
    return _read(peak_path(root)).get(device_name(device))


def training_runs(manager: RunManager | None = None) -> int:
    """How many runs the run manager has training or waiting to train (a queued run may start any moment)."""
    manager = manager if manager is not None else get_manager()
    return sum(1 for r in manager.list_runs() if r.active)


# ---- the probe, in the worker process -----------------------------------------------------------------------

def probe_device(device: str = "cpu", dtype: str = "auto", size: int | None = None, repeats: int = 10,
                 budget_s: float = 2.0, inner: int | None = None) -> MeasuredPeak:
    """Configure this process as a run's (engine.device) and time `repeats` batches of `inner` (n x n) @ (n x n)
    matmuls in the run's precision, 2 n^3 FLOPs each; the fastest batch is the peak. Warms up first (allocation,
    kernel choice, a GPU's clocks); stops early once `budget_s` is spent, keeping at least one timing.
    For the worker process: it sets torch's thread count and the current GPU for the whole process."""
    info = device_mod.get_device(device, dtype=dtype)
    dev, kind = info.device, info.type
    n, k = size or SIZES[kind], inner or INNER[kind]
    torch_dtype = torch.bfloat16 if info.dtype == "bfloat16" else torch.float32
    a = torch.randn(n, n, device=dev, dtype=torch_dtype)
    b = torch.randn(n, n, device=dev, dtype=torch_dtype)
    c = torch.empty(n, n, device=dev, dtype=torch_dtype)

    def batch() -> float:
        t = time.perf_counter()
        for _ in range(k):
            torch.matmul(a, b, out=c)
        if kind == "cuda":
            torch.cuda.synchronize(dev)
        elif kind == "mps":
            torch.mps.synchronize()
        return time.perf_counter() - t

    with torch.no_grad():
        warm_until = time.perf_counter() + min(0.5, budget_s / 4)
        batch()
        while time.perf_counter() < warm_until:
            batch()
        start, seconds = time.perf_counter(), []
        while len(seconds) < repeats and (not seconds or time.perf_counter() - start < budget_s):
            seconds.append(batch())
    best, median = min(seconds), sorted(seconds)[len(seconds) // 2]
    where = str(dev)  # "cuda:0" (engine.device always names the GPU), "cpu"
    return MeasuredPeak(device_name=device_name(where), device=where, dtype=info.dtype, size=n, inner=k,
                        repeats=len(seconds), seconds=seconds, best_s=best, median_s=median,
                        flops_per_s=2 * n**3 * k / best, threads=torch.get_num_threads(), measured_at=time.time())


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Two processes keeping a peak at once must not lose each other's entry (POSIX; elsewhere, no lock)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def keep(peak: MeasuredPeak, root: Path | str) -> Path:
    """Write `peak` into the file under `root`, replacing the entry for its device name only."""
    path = peak_path(root)
    with _file_lock(path):
        _memory.pop(str(path), None)
        kept = {n: asdict(p) for n, p in _read(path).items()}
        kept[peak.device_name] = asdict(peak)
        return write_text(path, json.dumps(kept, indent=2) + "\n")


# ---- the server's side: start the worker, wait or not ---------------------------------------------------------

def measure_in_worker(device: str = "cpu", root: Path | str | None = None, timeout: float = WORKER_TIMEOUT_S,
                      **probe_options: Any) -> MeasuredPeak:
    """Run the probe in `python -m engine.cost.peak` (it keeps what it measured under `root`) and return it.
    `probe_options`: probe_device's dtype, size, repeats, budget_s, inner. Raises RuntimeError if it fails."""
    root = Path(root if root is not None else get_manager().runs_root)
    cmd = [sys.executable, "-m", "engine.cost.peak", "--device", device, "--root", str(root)]
    for key, value in probe_options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.ROOT), env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run(cmd, cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"the peak probe on {device} did not finish within {timeout:g} s") from err
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the peak probe on {device} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return MeasuredPeak(**json.loads(lines[-1]))


def measure_peak(device: str = "cpu", root: Path | str | None = None, manager: RunManager | None = None,
                 **probe_options: Any) -> MeasuredPeak:
    """Probe `device`'s kind now, in a worker process, and keep it (replacing the one kept for that name); waits
    for it (a few seconds). Raises PeakBusy for a CPU while the run manager trains anything (a GPU is probed anyway:
    the fastest timing is kept). `probe_options` go to `probe_device` (dtype, size, repeats, budget_s, inner)."""
    if torch.device(device).type == "cpu" and (busy := training_runs(manager)):
        raise PeakBusy(f"{busy} training run(s) on this machine: measuring now would slow them down and read low")
    return measure_in_worker(device, root, **probe_options)


def ensure_peak(device: str = "cpu", root: Path | str | None = None,
                manager: RunManager | None = None) -> MeasuredPeak | None:
    """The peak kept for `device`'s kind; if there is none, start measuring it in the background (once: a probe
    already under way, or one that failed less than RETRY_AFTER_S ago, is not started again) and return None.
    Never blocks: call it where a page or the server starts. A CPU is not probed while a run trains."""
    root = Path(root if root is not None else get_manager().runs_root)
    kept = measured_peak(device, root)
    if kept is not None:
        return kept
    name = device_name(device)
    with _lock:
        if name in _in_flight or time.monotonic() - _failed.get(name, (-RETRY_AFTER_S, ""))[0] < RETRY_AFTER_S:
            return None
        if torch.device(device).type == "cpu" and training_runs(manager):
            return None
        thread = threading.Thread(target=_measure_quietly, args=(device, root, name), name="peak-probe", daemon=True)
        _in_flight[name] = thread
        thread.start()
    return None


def measuring(device: str = "cpu") -> bool:
    """Is `ensure_peak` measuring `device`'s kind right now (for the page: "measuring this machine's peak...")?"""
    with _lock:
        return device_name(device) in _in_flight


def probe_error(device: str = "cpu") -> str | None:
    """Why the last background probe of `device`'s kind failed, or None."""
    with _lock:
        return _failed.get(device_name(device), (0.0, None))[1]


def _measure_quietly(device: str, root: Path, name: str) -> None:
    error = None
    try:
        measure_in_worker(device, root)
    except Exception as err:  # noqa: BLE001 - the page shows "not measured"; the reason is kept for it
        error = str(err)
    with _lock:
        _in_flight.pop(name, None)
        if error is None:
            _failed.pop(name, None)
        else:
            _failed[name] = (time.monotonic(), error)


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.cost.peak --device cuda --root runs/`: probe, keep, print the entry as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m engine.cost.peak", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--root", type=Path, default=None, help="the runs folder (default: $LLM_COURSE_RUNS or runs/)")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--inner", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    peak = probe_device(args.device, dtype=args.dtype, size=args.size, repeats=args.repeats, budget_s=args.budget_s,
                        inner=args.inner)
    keep(peak, args.root if args.root is not None else paths.runs_dir())
    print(json.dumps(asdict(peak)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
