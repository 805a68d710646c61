"""engine.cost.peak: the machine's peak is measured on request, kept on disk and in memory, read back after a restart,
survives a broken file, and is never measured while a run trains."""

from __future__ import annotations

import json
import os

import pytest
import torch

from engine.cost import peak
from engine.device import physical_cores
from engine.runs.snapshot import RunSnapshot

SMALL = {"size": 96, "repeats": 3, "budget_s": 0.5}  # a quick probe: the tests check the bookkeeping, not speed


class FakeManager:
    """The one thing measure_peak asks a run manager: which runs it has."""

    def __init__(self, *statuses: str) -> None:
        self.runs = [RunSnapshot(f"r{i}", "d", s) for i, s in enumerate(statuses)]

    def list_runs(self) -> list[RunSnapshot]:
        return self.runs


def test_measured_once_then_read_back_from_the_file(tmp_path):
    assert peak.measured_peak("cpu", tmp_path) is None
    before = torch.get_num_threads()
    kept = peak.measure_peak("cpu", tmp_path, manager=FakeManager("finished", "stopped"), **SMALL)
    assert torch.get_num_threads() == before  # the server's thread count is put back
    assert kept.threads == physical_cores() and kept.size == 96 and 1 <= kept.repeats <= 3
    assert kept.flops_per_s == pytest.approx(2 * 96**3 / kept.median_s) and kept.device == "cpu"
    assert kept.device_name and kept.measured_at > 0

    saved = json.loads((tmp_path / peak.PEAK_FILE).read_text())
    assert saved["cpu"]["flops_per_s"] == kept.flops_per_s and saved["cpu"]["threads"] == kept.threads
    assert peak.measured_peak("cpu", tmp_path) == kept  # from memory
    peak._memory.clear()  # a restarted server: only the file is left
    assert peak.measured_peak("cpu", tmp_path) == kept
    assert peak.measured_peak("cuda:0", tmp_path) is None  # kept per device


def test_a_file_another_process_wrote_is_seen(tmp_path):
    first = peak.measure_peak("cpu", tmp_path, manager=FakeManager(), **SMALL)
    assert peak.measured_peak("cpu", tmp_path) == first
    path = tmp_path / peak.PEAK_FILE
    entry = json.loads(path.read_text())
    entry["cpu"]["flops_per_s"] = 123.0
    path.write_text(json.dumps(entry))
    os.utime(path, ns=(1, 1))  # a different stamp, even on a coarse clock
    assert peak.measured_peak("cpu", tmp_path).flops_per_s == 123.0


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"cpu": {"flops_per_s": 1e9}}',
                                     '{"cpu": "fast"}', ""])
def test_a_broken_file_reads_as_not_measured_and_is_replaced(tmp_path, content):
    (tmp_path / peak.PEAK_FILE).write_text(content)
    assert peak.measured_peak("cpu", tmp_path) is None
    kept = peak.measure_peak("cpu", tmp_path, manager=FakeManager(), **SMALL)
    assert peak.measured_peak("cpu", tmp_path) == kept
    assert set(json.loads((tmp_path / peak.PEAK_FILE).read_text())) == {"cpu"}


def test_a_bad_entry_spoils_only_its_device(tmp_path):
    good = peak.measure_peak("cpu", tmp_path, manager=FakeManager(), **SMALL)
    path = tmp_path / peak.PEAK_FILE
    entry = json.loads(path.read_text())
    entry["cuda:0"] = dict(entry["cpu"], device="cuda:0", flops_per_s=-5.0)  # negative: not something we wrote
    path.write_text(json.dumps(entry))
    assert peak.measured_peak("cuda:0", tmp_path) is None
    assert peak.measured_peak("cpu", tmp_path) == good


@pytest.mark.parametrize("status", ["running", "queued"])
def test_never_measured_while_a_run_trains_or_waits(tmp_path, status):
    with pytest.raises(peak.PeakBusy, match="1 training run"):
        peak.measure_peak("cpu", tmp_path, manager=FakeManager("finished", status), **SMALL)
    assert not (tmp_path / peak.PEAK_FILE).exists()
    assert peak.training_runs(FakeManager("running", "queued", "diverged")) == 2
