"""Which hardware trains the model, and how: chosen once per process, reported in a sentence for the UI.

An NVIDIA GPU (CUDA; "cuda:N" picks GPU N, one training process per GPU, `gpu_for_slot`), then an Apple GPU
(MPS), then the CPU. Each gets the precision and compilation that pay off on it: bf16 autocast only where the
hardware computes in bf16 natively (CUDA compute capability 8.0+; a CPU with AVX512-BF16 or AMX, and there only
if it is faster on the run's own shapes, `faster_precision`), TF32 and `torch.compile` on CUDA, and on the CPU
one torch thread per physical core and no compile. The rules and the reasons for each: docs/architecture.md,
"Choosing the device".

`get_device` configures this process for training (thread count, TF32, the current GPU) and may measure;
`predicted_sentence` only says what a training process would choose, for a process that does not train (the
web server).
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sysconfig
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

_lock = threading.Lock()
_cache: dict[tuple[str, int], DeviceInfo] = {}
_bf16_cpu_faster: bool | None = None  # what the last measurement in this process chose
_precision_cache: dict[Hashable, str] = {}  # faster_precision's answers, per run shape
PRECISION_MARGIN = 0.9  # bf16 must take at most this fraction of float32's time (a stable choice, not a coin toss)


@dataclass(frozen=True)
class DeviceInfo:
    """What the trainer runs on. Plain data, so the UI can show it and a checkpoint can record it."""

    type: str  # "cuda", "mps" or "cpu"
    name: str  # e.g. "NVIDIA A100-SXM4-40GB" or "AMD EPYC"
    threads: int  # CPU threads torch uses for one operation
    dtype: str  # "bfloat16" (autocast) or "float32"
    compile: bool  # wrap the model in torch.compile
    sentence: str  # for the UI: "Training on CPU, 2 threads"
    index: int | None = None  # which GPU ("cuda:1" -> 1); None for the CPU and the Apple GPU
    # bf16 matmuls run at full speed here (not emulated). engine.train.muon.Muon orthogonalises in bf16, so where this
    # is False engine.train.prepare has it orthogonalise in float32 instead. CPUs: True (torch's bf16 CPU kernels are what the
    # `lesson` preset's Muon was tuned with; autocast is a separate, measured decision).
    native_bf16: bool = True

    @property
    def device(self) -> torch.device:
        return torch.device(self.type, self.index) if self.index is not None else torch.device(self.type)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes: bf16 autocast where chosen, otherwise a no-op."""
        if self.dtype == "bfloat16":
            return torch.autocast(device_type=self.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        """Wait until the GPU has run everything queued so far, before a clock is read: CUDA kernels run
        asynchronously, so a time taken without it measures the launches, not the work. Nothing elsewhere."""
        if self.device.type == "cuda":  # where the tensors are (a test's stand-in GPU keeps them on the CPU)
            torch.cuda.synchronize(self.device)


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads counted once).

    Reads Linux's CPU topology for the CPUs in our affinity mask; elsewhere falls back to os.cpu_count().
    """
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
    cores: set[tuple[str, str]] = set()
    for cpu in allowed:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        except OSError:
            return max(1, len(allowed))
    return max(1, len(cores))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _measure_bf16_cpu() -> bool:
    """May a run on this CPU consider bf16 at all? Only with native bf16 dot products; whether it is *faster* is
    measured per run on its own shapes (`faster_precision`, called by engine.train.prepare). One function, so a test can
    make ranks of one run disagree here."""
    return _cpu_has_native_bf16()


def faster_precision(step: Callable[[bool], None], key: Hashable, rounds: int = 3) -> str:
    """"bfloat16" or "float32": whichever runs `step(bf16)` (one forward and backward of the run's model on one of
    its batches) faster, bf16 needing to win by 10%. One warm-up call each, then `rounds` interleaved timings,
    the best of each kept, so a busy neighbour process does not decide it. Answers are kept per `key` (the
    run's shape), so a second run of the same shape in this process does not measure again.

    >>> faster_precision(lambda bf16: time.sleep(0.001 if bf16 else 0.01), key="doctest")  # bf16 10x faster here
    'bfloat16'
    """
    global _bf16_cpu_faster
    if key in _precision_cache:
        return _precision_cache[key]
    best = {False: float("inf"), True: float("inf")}
    for bf16 in (False, True):
        step(bf16)  # allocations, kernel choice
    for _ in range(rounds):
        for bf16 in (False, True):
            t = time.perf_counter()
            step(bf16)
            best[bf16] = min(best[bf16], time.perf_counter() - t)
    choice = "bfloat16" if best[True] < PRECISION_MARGIN * best[False] else "float32"
    _precision_cache[key] = choice
    _bf16_cpu_faster = choice == "bfloat16"
    return choice


def compile_blocker() -> str | None:
    """Why torch.compile cannot build kernels on this machine, or None. Inductor writes its kernels as source
    (Triton on a GPU, C++ on a CPU) and builds them with the system's C compiler against Python's headers
    (Python.h); without either, compiling fails at the first step, after the time spent tracing.

    >>> compile_blocker() is None or compile_blocker().startswith("no ")
    True
    """
    compilers = [os.environ.get("CC", ""), "cc", "gcc", "clang"]
    if not any(shutil.which(c) for c in compilers if c):
        return "no C compiler (cc, gcc or clang) on the PATH"
    include = sysconfig.get_paths().get("include") or ""
    if not Path(include, "Python.h").is_file():
        return f"no Python headers (Python.h) in {include or 'the include folder'}"
    return None


def gpu_for_slot(slot: int, n_gpus: int) -> str:
    """The device string for run slot `slot` on a machine with `n_gpus` GPUs: slots take the GPUs in turn.

    Why: the run manager allows one run per GPU; without this every run's process would train on GPU 0.

    >>> [gpu_for_slot(s, 2) for s in range(3)]
    ['cuda:0', 'cuda:1', 'cuda:0']
    """
    if n_gpus < 1:
        raise ValueError(f"gpu_for_slot needs at least one GPU, got n_gpus={n_gpus}")
    if slot < 0:
        raise ValueError(f"slot must be >= 0, got {slot}")
    return f"cuda:{slot % n_gpus}"


def parse_device(preferred: str) -> tuple[str, int | None]:
    """Split a device string into its kind and GPU index: "cuda:1" -> ("cuda", 1), "auto" -> ("auto", None).

    >>> parse_device("cuda:1"), parse_device("cpu")
    (('cuda', 1), ('cpu', None))
    """
    kind, sep, index = preferred.partition(":")
    if kind not in ("auto", "cuda", "mps", "cpu") or (sep and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"device must be 'auto', 'cuda', 'cuda:N', 'mps' or 'cpu', not {preferred!r}")
    return kind, int(index) if sep else None


def cuda_native_bf16(index: int) -> bool:
    """Does GPU `index` compute in bf16 natively? Compute capability 8.0+ (Ampere, Ada, Hopper, Blackwell).

    Not `torch.cuda.is_bf16_supported()`: it can say True on older GPUs where bf16 is emulated, slower than
    float32. Only queries the device's properties (no CUDA context).
    """
    return tuple(torch.cuda.get_device_capability(index)) >= (8, 0)


def mps_native_bf16() -> bool:
    """Apple GPUs have bf16 in Metal from macOS 14; before that MPS cannot run bf16 matmuls at all."""
    try:
        return bool(torch.backends.mps.is_macos_or_newer(14, 0))
    except (AttributeError, RuntimeError):
        return False


def _auto_kind() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def get_device(
    preferred: str = "auto", dtype: str = "auto", processes_per_host: int = 1, threads: int | None = None
) -> DeviceInfo:
    """Pick the device (once: the choice and any measurement are cached) and set torch's CPU thread count.

    `preferred`: "auto", "cuda", "cuda:N" (GPU N), "mps" or "cpu". `dtype`: "auto" (the rules in docs/architecture.md,
    "Choosing the device"), "float32" or "bfloat16". `processes_per_host`: how many training processes share this machine
    (torchrun --nproc_per_node), so CPU threads are divided between them instead of oversubscribing the cores.
    `threads`: force a CPU thread count (toy models run faster on one: handing tiny matrices to a second
    thread costs more than it saves, and on a busy machine a waiting thread can stall the step).
    """
    with _lock:
        key = (f"{preferred}:{dtype}", processes_per_host)
        info = _cache.get(key)
        if info is None:
            info = _choose(preferred, dtype, processes_per_host)
            _cache[key] = info
        if info.type == "cpu" and threads is not None and threads != info.threads:
            info = replace(info, threads=threads, sentence=cpu_sentence(threads, info.dtype))
        if info.type == "cpu":
            torch.set_num_threads(info.threads)  # process-wide: set again in case another run changed it
        if info.type == "cuda" and info.index is not None:
            torch.cuda.set_device(info.index)  # kernels and allocations without an explicit index go there too
        return info


def cpu_sentence(threads: int, dtype: str) -> str:
    """What the learner reads, e.g. "Training on CPU, 2 threads, bf16"."""
    plural = "thread" if threads == 1 else "threads"
    return f"Training on CPU, {threads} {plural}" + (", bf16" if dtype == "bfloat16" else "")


def _cuda_sentence(index: int, name: str, dtype: str) -> str:
    """E.g. "Training on GPU 1 (NVIDIA H100 80GB HBM3), bfloat16": the number tells runs on a multi-GPU machine
    apart; on a one-GPU machine it says "on the GPU"."""
    which = f"GPU {index}" if torch.cuda.device_count() > 1 else "the GPU"
    return f"Training on {which} ({name}), {dtype}"


def _cuda_index(index: int | None) -> int:
    if not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for, but torch sees no NVIDIA GPU on this machine.")
    n = torch.cuda.device_count()
    if index is None:
        return torch.cuda.current_device()  # under torchrun, setup_distributed made it this rank's GPU
    if index >= n:
        raise RuntimeError(f"GPU {index} was asked for, but this machine has {n} (numbered from 0).")
    return index


def _choose(preferred: str, dtype: str, processes_per_host: int) -> DeviceInfo:
    kind, index = parse_device(preferred)
    if kind == "auto":
        kind = _auto_kind()

    if kind == "cuda":
        index = _cuda_index(index)
        torch.backends.cuda.matmul.allow_tf32 = True  # TF32: float32 matmuls on the tensor cores (Ampere+), ample precision
        torch.backends.cudnn.allow_tf32 = True
        name = torch.cuda.get_device_name(index)
        native = cuda_native_bf16(index)
        chosen = dtype if dtype != "auto" else ("bfloat16" if native else "float32")
        return DeviceInfo("cuda", name, torch.get_num_threads(), chosen, platform.system() != "Windows",
                          _cuda_sentence(index, name, chosen), index=index, native_bf16=native)

    if kind == "mps":
        chosen = "float32" if dtype == "auto" else dtype
        return DeviceInfo("mps", "Apple GPU", torch.get_num_threads(), chosen, False, "Training on the Apple GPU (MPS)",
                          native_bf16=mps_native_bf16())

    threads = max(1, physical_cores() // max(1, processes_per_host))
    torch.set_num_threads(threads)
    # "auto": bf16 is the candidate where native; engine.train.prepare keeps it only if it measures faster for the run
    chosen = dtype if dtype != "auto" else ("bfloat16" if _measure_bf16_cpu() else "float32")
    return DeviceInfo("cpu", _cpu_name(), threads, chosen, False, cpu_sentence(threads, chosen),
                      native_bf16=_cpu_has_native_bf16())


def predicted_sentence(preferred: str = "auto", dtype: str = "auto", threads: int | None = None) -> str:
    """What a training process started now would say it trains on, without configuring this process.

    For the web server, which shows the sentence but never trains: unlike `get_device` this does not set torch's
    thread count, run the CPU bf16 speed probe, enable TF32 or select a GPU; on CUDA it only asks for the device
    count, name and compute capability. Where the CPU's bf16 choice needs the probe (a CPU with native bf16 that
    this process has not measured), it says so instead of guessing.
    """
    kind, index = parse_device(preferred)
    if kind == "auto":
        kind = _auto_kind()
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "No NVIDIA GPU here: a run asking for CUDA would fail."
        n = torch.cuda.device_count()
        index = 0 if index is None else index
        if index >= n:
            return f"GPU {index} was asked for, but this machine has {n}."
        name = torch.cuda.get_device_name(index)
        chosen = dtype if dtype != "auto" else ("bfloat16" if cuda_native_bf16(index) else "float32")
        return _cuda_sentence(index, name, chosen)
    if kind == "mps":
        return "Training on the Apple GPU (MPS)"
    n_threads = threads if threads is not None else physical_cores()
    if dtype != "auto":
        return cpu_sentence(n_threads, dtype)
    if not _cpu_has_native_bf16():
        return cpu_sentence(n_threads, "float32")
    return cpu_sentence(n_threads, "float32") + " (bf16 if it measures faster for the run on this CPU)"



_one_thread_lock = threading.RLock()


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the count: for the small show-me computations the
    web server does for a page (an embedding projection, next-token probabilities), never for training.

    Why: these tensors are tiny (a 65 x 128 table, a 3-layer model), and on a machine whose cores are busy (a run
    training beside the page) two threads spend their time waiting for each other, many times slower than one
    (docs/benchmarks.md, "Figures behind choices in the code"). torch's thread count is process-wide, so every caller goes through this one
    lock (Streamlit runs each session in a thread of its own): nested and concurrent callers restore it in order.
    """
    with _one_thread_lock:
        before = torch.get_num_threads()
        if before != 1:  # (nested: already one thread, nothing to change; a change of the pool is not free)
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if before != 1:
                torch.set_num_threads(before)
