"""This machine's peak FLOP/s, measured once and kept: the denominator of a run's model FLOPs utilisation.

`engine.cost.flops.probe_peak_flops` times big matmuls on every core for up to 1.5 s: too slow to repeat on each
page view, and it must never run beside a training run (they would share the cores, the run would slow down and
the probe would read low). So it runs only when the learner asks (`measure_peak`, which refuses while the run
manager trains anything), and its result is kept: on disk in `peak.json` beside the run folders, one entry per
device (when, torch's thread count, the device's name), so a server restart keeps it; in memory keyed by the
file's modification stamp, so a page polling every two seconds reads one `stat` and still sees a peak another
server process measured. A missing, unreadable or hand-broken file is "not measured yet" (None), never an error.

>>> import tempfile
>>> root = tempfile.mkdtemp()
>>> measured_peak("cpu", root) is None
True
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from engine import device as device_mod
from engine.cost.flops import PeakProbe, probe_peak_flops
from engine.files import write_text
from engine.runs.manager import RunManager, get_manager

PEAK_FILE = "peak.json"


@dataclass(frozen=True)
class MeasuredPeak(PeakProbe):
    """A PeakProbe as it was kept: plus when it was measured and what the device is called."""

    measured_at: float  # time.time()
    device_name: str  # "AMD EPYC 7B13", "NVIDIA H100 80GB HBM3"


class PeakBusy(RuntimeError):
    """Raised instead of probing while a run trains: the probe would slow it down and read low."""


_lock = threading.Lock()  # one probe at a time in this process (two at once would each read half)
_memory: dict[str, tuple[tuple[int, int], dict[str, MeasuredPeak]]] = {}  # path -> (file stamp, device -> peak)


def peak_path(root: Path | str | None = None) -> Path:
    """The file the peaks are kept in: `peak.json` in the runs folder (the run manager's, unless given)."""
    return Path(root if root is not None else get_manager().runs_root) / PEAK_FILE


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _parse_entry(device: str, raw: Any) -> MeasuredPeak | None:
    """One device's entry, or None if it is not the shape we write (a hand edit, an older version)."""
    if not isinstance(raw, dict):
        return None
    names = {f.name for f in fields(MeasuredPeak)}
    if set(raw) != names:
        return None
    try:
        peak = MeasuredPeak(**raw)
    except TypeError:
        return None
    numbers = (peak.median_s, peak.flops_per_s, peak.measured_at)
    if (not all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in numbers)
            or not isinstance(peak.seconds, list) or peak.device != device or not isinstance(peak.threads, int)):
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
        peaks = {d: p for d, entry in raw.items() if (p := _parse_entry(d, entry)) is not None}
    _memory[str(path)] = (stamp, peaks)
    return peaks


def measured_peak(device: str = "cpu", root: Path | str | None = None) -> MeasuredPeak | None:
    """The peak kept for `device` ("cpu", "cuda:0"), or None if it has not been measured (or the file is broken).

    Cheap enough for every poll of a live page: one `stat` when nothing changed."""
    return _read(peak_path(root)).get(device)


def device_name(device: str) -> str:
    """What the device is called: the CPU's model name, or the GPU's."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return device_mod._cpu_name()  # the name the training process's device sentence uses


def training_runs(manager: RunManager | None = None) -> int:
    """How many runs the run manager has training or waiting to train (a queued run may start any moment)."""
    manager = manager if manager is not None else get_manager()
    return sum(1 for r in manager.list_runs() if r.active)


def measure_peak(device: str = "cpu", root: Path | str | None = None, manager: RunManager | None = None,
                 **probe_options: Any) -> MeasuredPeak:
    """Probe `device`'s peak now and keep it (replacing the one kept for that device). Raises PeakBusy while the
    run manager trains anything.

    On a CPU the probe uses as many threads as a training process would (`engine.device.physical_cores`), so the
    utilisation it feeds compares like with like; the server's own thread count is put back afterwards.
    `probe_options` go to `engine.cost.flops.probe_peak_flops` (size, repeats, budget_s).
    """
    with _lock:
        busy = training_runs(manager)
        if busy:
            raise PeakBusy(f"{busy} training run(s) on this machine: measuring now would slow them down and read low")
        if torch.device(device).type == "cpu":
            # torch's thread count is process-wide: take the same lock the page's one-thread computations take.
            with device_mod._one_thread_lock:
                before = torch.get_num_threads()
                torch.set_num_threads(device_mod.physical_cores())
                try:
                    probe = probe_peak_flops(device=device, **probe_options)
                finally:
                    torch.set_num_threads(before)
        else:
            probe = probe_peak_flops(device=device, **probe_options)
        peak = MeasuredPeak(**asdict(probe), measured_at=time.time(), device_name=device_name(device))
        path = peak_path(root)
        kept = {d: asdict(p) for d, p in _read(path).items()}
        kept[device] = asdict(peak)
        write_text(path, json.dumps(kept, indent=2) + "\n")
        return peak
