"""engine.cost.peak: a device's peak is measured in a worker process, in the precision runs use there, kept per
device name on disk and in memory, read back after a restart, survives a broken file, is never measured on a CPU
while a run trains, and `ensure_peak` measures it once, in the background."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from engine import device as device_mod
from engine.cost import peak
from engine.device import physical_cores
from engine.runs.snapshot import RunSnapshot
from tests.conftest import wait_until

SMALL = {"size": 96, "repeats": 3, "budget_s": 0.5}  # a quick probe: the tests check the bookkeeping, not speed
CPU = peak.device_name("cpu")


class FakeManager:
    """The one thing the probe asks a run manager: which runs it has."""

    def __init__(self, *statuses: str) -> None:
        self.runs = [RunSnapshot(f"r{i}", "d", s) for i, s in enumerate(statuses)]

    def list_runs(self) -> list[RunSnapshot]:
        return self.runs


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[peak.MeasuredPeak, Path]:
    """One real probe in a worker process for the module (it imports torch: seconds), and the file it kept."""
    root = tmp_path_factory.mktemp("peak")
    before = torch.get_num_threads()
    kept = peak.measure_peak("cpu", root, manager=FakeManager("finished", "stopped"), **SMALL)
    assert torch.get_num_threads() == before  # measured in another process: this one's torch is untouched
    return kept, root / peak.PEAK_FILE


@pytest.fixture
def root(tmp_path: Path, measured: tuple[peak.MeasuredPeak, Path]) -> Path:
    """A fresh runs folder holding a copy of the module's measured file."""
    shutil.copy(measured[1], tmp_path / peak.PEAK_FILE)
    return tmp_path


def test_measured_in_a_worker_in_the_runs_precision_and_kept_by_device_name(measured):
    kept, path = measured
    expected_dtype = "bfloat16" if device_mod._cpu_has_native_bf16() else "float32"  # engine.device's candidate
    assert kept.device == "cpu" and kept.device_name == CPU and kept.dtype == expected_dtype
    assert kept.threads == physical_cores()  # as a run's process: one thread per physical core
    assert kept.size == 96 and kept.inner == 1 and 1 <= kept.repeats == len(kept.seconds) <= 3
    assert kept.best_s == min(kept.seconds) <= kept.median_s
    assert kept.flops_per_s == pytest.approx(2 * 96**3 * kept.inner / kept.best_s)  # 2 n^3 per matmul, the fastest
    saved = json.loads(path.read_text())
    assert set(saved) == {CPU} and saved[CPU] == asdict(kept)


def test_read_back_from_memory_and_after_a_restart(root, measured):
    kept = measured[0]
    assert peak.measured_peak("cpu", root) == kept
    assert peak.measured_peak("cpu", root) == kept  # from memory
    peak._memory.clear()  # a restarted server: only the file is left
    assert peak.measured_peak("cpu", root) == kept


def test_kept_per_device_name_not_per_index(root, monkeypatch):
    names = {"cuda:0": "NVIDIA H100 80GB HBM3", "cuda:1": "NVIDIA H100 80GB HBM3", "cuda:2": "NVIDIA A100"}
    monkeypatch.setattr(peak, "device_name", lambda d: names.get(d, CPU))
    gpu = replace(peak.measured_peak("cpu", root), device_name=names["cuda:0"], device="cuda:0", dtype="bfloat16",
                  flops_per_s=7e14)
    peak.keep(gpu, root)
    assert peak.measured_peak("cuda:1", root) == gpu  # the same kind of GPU: measured once
    assert peak.measured_peak("cuda:2", root) is None  # another kind: not measured yet
    assert peak.measured_peak("cpu", root).device == "cpu"  # the CPU's entry is untouched


def test_a_file_another_process_wrote_is_seen(root):
    assert peak.measured_peak("cpu", root) is not None
    path = root / peak.PEAK_FILE
    entry = json.loads(path.read_text())
    entry[CPU]["flops_per_s"] = 123.0
    path.write_text(json.dumps(entry))
    os.utime(path, ns=(1, 1))  # a different stamp, even on a coarse clock
    assert peak.measured_peak("cpu", root).flops_per_s == 123.0


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({CPU: {"flops_per_s": 1e9}}),
                                     json.dumps({CPU: "fast"}), ""])
def test_a_broken_file_reads_as_not_measured_and_is_replaced(tmp_path, measured, content):
    (tmp_path / peak.PEAK_FILE).write_text(content)
    assert peak.measured_peak("cpu", tmp_path) is None
    peak.keep(measured[0], tmp_path)
    assert peak.measured_peak("cpu", tmp_path) == measured[0]
    assert set(json.loads((tmp_path / peak.PEAK_FILE).read_text())) == {CPU}


def test_an_older_versions_entry_reads_as_not_measured(tmp_path):
    """Before, the file was keyed "cpu" and the probe was float32 in the server: measure again."""
    old = {"size": 1024, "repeats": 7, "seconds": [0.02], "median_s": 0.02, "flops_per_s": 1e11, "device": "cpu",
           "threads": 2, "measured_at": 1.0, "device_name": CPU}
    (tmp_path / peak.PEAK_FILE).write_text(json.dumps({"cpu": old, CPU: old}))
    assert peak.measured_peak("cpu", tmp_path) is None


def test_a_bad_entry_spoils_only_its_device(root, measured):
    path = root / peak.PEAK_FILE
    entry = json.loads(path.read_text())
    entry["NVIDIA H100"] = dict(entry[CPU], device_name="NVIDIA H100", flops_per_s=-5.0)  # not something we wrote
    path.write_text(json.dumps(entry))
    assert peak._read(path).keys() == {CPU}
    assert peak.measured_peak("cpu", root) == measured[0]


@pytest.mark.parametrize("status", ["running", "queued"])
def test_a_cpu_is_never_measured_while_a_run_trains_or_waits(tmp_path, status, monkeypatch):
    started = []
    monkeypatch.setattr(peak, "measure_in_worker", lambda *a, **k: started.append(a))
    with pytest.raises(peak.PeakBusy, match="1 training run"):
        peak.measure_peak("cpu", tmp_path, manager=FakeManager("finished", status), **SMALL)
    assert peak.ensure_peak("cpu", tmp_path, manager=FakeManager(status)) is None
    assert not started and not peak.measuring("cpu") and not (tmp_path / peak.PEAK_FILE).exists()
    assert peak.training_runs(FakeManager("running", "queued", "diverged")) == 2


def test_a_gpu_is_measured_while_runs_train(tmp_path, monkeypatch):
    """Runs always train on a class's GPU server: its probe keeps the fastest timing instead of refusing."""
    calls = []
    monkeypatch.setattr(peak, "measure_in_worker", lambda device, root, **k: calls.append(device) or "kept")
    assert peak.measure_peak("cuda:0", tmp_path, manager=FakeManager("running")) == "kept"
    assert calls == ["cuda:0"]


def test_ensure_peak_measures_once_in_the_background(tmp_path, measured, monkeypatch):
    calls = []

    def slow_worker(device: str, root: Path, **options) -> peak.MeasuredPeak:
        calls.append(device)
        time.sleep(0.3)
        peak.keep(measured[0], root)
        return measured[0]

    monkeypatch.setattr(peak, "measure_in_worker", slow_worker)
    assert peak.ensure_peak("cpu", tmp_path, manager=FakeManager("finished")) is None  # started, not awaited
    assert peak.measuring("cpu")
    assert peak.ensure_peak("cpu", tmp_path, manager=FakeManager()) is None  # under way: not started twice
    kept = wait_until(lambda: peak.ensure_peak("cpu", tmp_path, manager=FakeManager()), timeout=30,
                      what="the background probe")
    # the probe keeps its peak a moment before its thread says it is done: wait for that too
    wait_until(lambda: not peak.measuring("cpu"), timeout=30, what="the probe's thread to end")
    assert kept == measured[0] and calls == ["cpu"] and peak.probe_error("cpu") is None


def test_a_failed_background_probe_says_why_and_is_not_retried_at_once(tmp_path, monkeypatch):
    calls = []

    def broken(device: str, root: Path, **options) -> None:
        calls.append(device)
        raise RuntimeError("the peak probe on cpu exited 1: no memory")

    monkeypatch.setattr(peak, "measure_in_worker", broken)
    monkeypatch.setattr(peak, "_failed", {})
    assert peak.ensure_peak("cpu", tmp_path, manager=FakeManager()) is None
    wait_until(lambda: not peak.measuring("cpu"), timeout=30, what="the probe to end")
    assert "no memory" in peak.probe_error("cpu")
    assert peak.ensure_peak("cpu", tmp_path, manager=FakeManager()) is None and calls == ["cpu"]


def test_a_failing_worker_raises_with_its_reason(tmp_path):
    with pytest.raises(RuntimeError, match="exited 2"):
        peak.measure_in_worker("cpu", tmp_path, size="not-a-number")
