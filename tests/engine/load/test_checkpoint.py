"""engine.load.checkpoint and the saving side of engine.train.job: atomic writes, saves during training, the timeline,
and a full disk reported in plain words with nothing half-written left behind."""

from __future__ import annotations

import errno
import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.files import write_atomically
from engine.load import checkpoint
from engine.load.checkpoint import (
    list_timeline,
    load_checkpoint,
    load_timeline_model,
    read_checkpoint,
    save_error_message,
    timeline_keep,
)
from engine.runs.worker import make_job, spawn
from engine.train.config import PRESETS
from engine.train.job import run_job

TINY = PRESETS["tiny"]


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ---- atomic writes ---------------------------------------------------------------------------------------


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    checkpoint.save_checkpoint(tmp_path, {"step": 1})

    def half_then_full(tmp):
        tmp.write_bytes(b"half a checkpoint")
        _disk_full()

    with pytest.raises(OSError):
        write_atomically(tmp_path / checkpoint.CKPT, half_then_full)
    assert read_checkpoint(tmp_path)["step"] == 1  # the previous version, whole
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("err, words", [
    (OSError(errno.ENOSPC, "No space left on device"), "could not save: disk full"),
    (PermissionError(errno.EACCES, "Permission denied"), "is not writable"),
    (OSError(errno.EROFS, "Read-only file system"), "is not writable"),
    (OSError(errno.EIO, "Input/output error"), "Input/output error"),
])
def test_save_errors_are_said_in_plain_words(err: OSError, words: str) -> None:
    assert words in save_error_message(err, "runs/x")


# ---- saving while training -------------------------------------------------------------------------------


def test_the_folder_is_saved_while_the_run_trains(tmp_path: Path, small_text: str) -> None:
    """Read mid-run (as after a crash), the folder shows how far the run got and can be resumed."""
    run_dir, seen, events = tmp_path / "run", {}, []

    def on_record(record: dict) -> None:
        if record["step"] == 45:  # after the evaluation at step 40
            seen["summary"] = json.loads((run_dir / "summary.json").read_text())
            seen["ckpt_step"] = read_checkpoint(run_dir)["step"]
            seen["metrics"] = len(checkpoint.read_metrics(run_dir))

    status, _, _ = run_job(replace(TINY, max_steps=60), small_text, None, None, run_dir, on_record=on_record,
                           on_event=events.append, checkpoint_every_s=0.0)
    assert status == "finished"
    assert seen["summary"]["status"] == "running" and seen["summary"]["steps"] == 40
    assert seen["ckpt_step"] == 40 and seen["metrics"] == 41
    assert [e["step"] for e in events if e["event"] == "saved"] == [0, 20, 40]  # the end is saved by the job
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    assert _leftovers(run_dir) == []


def test_saves_are_at_most_every_n_seconds_but_step_0_always(tmp_path: Path, small_text: str) -> None:
    events: list[dict] = []
    run_job(replace(TINY, max_steps=60), small_text, None, None, tmp_path / "run", on_event=events.append,
            checkpoint_every_s=3600.0)
    assert [e["step"] for e in events if e["event"] == "saved"] == [0]
    # the timeline does not wait for a full save: a snapshot at each evaluation where the step has grown 1.5x
    assert [e["step"] for e in list_timeline(tmp_path / "run")] == [0, 20, 40, 60]
    assert read_checkpoint(tmp_path / "run")["step"] == 60


def test_a_long_run_timeline_grows_geometrically_between_full_saves(tmp_path: Path, small_text: str) -> None:
    config = replace(TINY, max_steps=400, eval_interval=10, sample_interval=0)
    run_job(config, small_text, None, None, tmp_path / "run", checkpoint_every_s=3600.0)
    steps = [e["step"] for e in list_timeline(tmp_path / "run")]
    # due at 0, 10, 20 (>=15), 30, 50 (>=45), 80 (>=75), 120, 180, 270, then the final 400; kept: at most 8 + latest
    assert steps[0] == 0 and steps[-1] == 400 and len(steps) == checkpoint.TIMELINE_MAX + 1
    assert steps == timeline_keep([0, 10, 20, 30, 50, 80, 120, 180, 270, 400])


def test_a_crashed_worker_leaves_its_last_checkpoint(tmp_path: Path, small_text: str) -> None:
    """SIGKILL (an out-of-memory kill) gives no chance to save at the end: the saves made while training remain."""
    run_dir = tmp_path / "run"
    proc = spawn()
    job = make_job(replace(TINY, max_steps=1_000_000), small_text, None, None, run_dir, 300.0,
                   checkpoint_every_s=0.0)
    proc.stdin.write(json.dumps(job) + "\n")
    proc.stdin.flush()
    for line in proc.stdout:
        message = json.loads(line)
        if message["event"] == "saved" and message["step"] >= 40:
            break
    proc.kill()
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stdin.close()
    assert read_checkpoint(run_dir)["step"] >= 40
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "running" and summary["steps"] >= 40
    assert len(checkpoint.read_metrics(run_dir)) >= 41


# ---- the timeline ----------------------------------------------------------------------------------------


def test_timeline_keeps_the_first_the_latest_and_a_geometric_few() -> None:
    steps = list(range(0, 100_001, 100))
    kept = timeline_keep(steps)
    assert kept[0] == 0 and kept[-1] == 100_000 and len(kept) == checkpoint.TIMELINE_MAX + 1
    gaps = [b - a for a, b in zip(kept[1:], kept[2:], strict=False)]
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False))  # growing intervals
    assert timeline_keep([0, 5, 9]) == [0, 5, 9]
    # applied again as the run goes on, it stays bounded
    kept_now: list[int] = []
    for step in range(0, 5001, 20):
        kept_now = timeline_keep(kept_now + [step])
        assert len(kept_now) <= checkpoint.TIMELINE_MAX + 1 and kept_now[0] == 0 and kept_now[-1] == step


def test_timeline_lists_and_loads_snapshots(tmp_path: Path, small_text: str) -> None:
    run_dir = tmp_path / "run"
    run_job(replace(TINY, max_steps=200), small_text, None, None, run_dir, checkpoint_every_s=0.0)
    entries = list_timeline(run_dir)
    steps = [e["step"] for e in entries]
    assert steps[0] == 0 and steps[-1] == 200 and len(steps) <= checkpoint.TIMELINE_MAX + 1
    assert sorted(p.name for p in (run_dir / "timeline").glob("*.pt")) == [e["file"] for e in entries]
    for e in entries:
        assert {"step", "train_loss", "val_loss", "sample", "file"} <= set(e)
        assert isinstance(e["sample"], str) and e["val_loss"] is not None
    assert entries[-1]["val_loss"] < entries[0]["val_loss"]
    # the last snapshot is the final model: the same outputs as the resumable checkpoint
    final, tok = load_timeline_model(run_dir, 200)
    latest, _, _, _ = load_checkpoint(run_dir)
    idx = torch.tensor([tok.encode("First Citizen")])
    assert torch.equal(final(idx)[0], latest(idx)[0])
    first, _ = load_timeline_model(run_dir, 0)
    assert not torch.equal(first(idx)[0], final(idx)[0])
    with pytest.raises(FileNotFoundError, match="no timeline snapshot at step 7"):
        load_timeline_model(run_dir, 7)
    assert list_timeline(tmp_path / "nothing-here") == []


def test_a_diverged_run_keeps_its_timeline_but_no_checkpoint(tmp_path: Path, small_text: str) -> None:
    run_dir = tmp_path / "run"
    status, _, _ = run_job(replace(TINY, lr=1e30), small_text, None, None, run_dir, checkpoint_every_s=0.0)
    assert status == "diverged"
    assert not (run_dir / "ckpt.pt").exists()  # NaN weights are not worth resuming
    assert [e["step"] for e in list_timeline(run_dir)] == [0]  # the healthy start is still there to replay


# ---- a full disk -----------------------------------------------------------------------------------------


def test_a_full_disk_at_the_end_fails_the_run_with_a_plain_message(tmp_path: Path, small_text: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"

    def fill_the_disk(record: dict) -> None:
        if record.get("final"):  # the weights no longer fit; the small files still do
            monkeypatch.setattr(torch, "save", _disk_full)

    status, message, summary = run_job(replace(TINY, max_steps=30), small_text, None, None, run_dir,
                                       on_record=fill_the_disk, checkpoint_every_s=0.0)
    assert status == "failed"
    assert "could not save: disk full" in message and "last checkpoint that was saved is from step 20" in message
    assert summary is not None and summary["status"] == "failed"
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["status"] == "failed" and "disk full" in on_disk["message"]
    assert len(checkpoint.read_metrics(run_dir)) == 31
    assert read_checkpoint(run_dir)["step"] == 20  # the last good one, intact
    assert _leftovers(run_dir) == []


def test_a_full_disk_during_training_is_reported_and_the_run_goes_on(tmp_path: Path, small_text: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[dict] = []
    real_replace = os.replace

    def full_between(record: dict) -> None:  # the disk is full from step 15 to step 45
        if record["step"] == 15:
            monkeypatch.setattr(os, "replace", _disk_full)
        if record["step"] == 45:
            monkeypatch.setattr(os, "replace", real_replace)

    status, message, _ = run_job(replace(TINY, max_steps=60), small_text, None, None, tmp_path / "run",
                                 on_record=full_between, on_event=events.append, checkpoint_every_s=0.0)
    assert status == "finished" and "could not" not in message
    failed = [e for e in events if e["event"] == "save_failed"]
    assert [e["step"] for e in failed] == [20, 40]
    assert "could not save: disk full" in failed[0]["message"] and "keeps training" in failed[0]["message"]
    assert read_checkpoint(tmp_path / "run")["step"] == 60
    assert _leftovers(tmp_path / "run") == []


def test_an_unwritable_runs_folder_says_so(tmp_path: Path, small_text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)  # as a folder we may not write into (chmod does not stop root)
    status, message, summary = run_job(replace(TINY, max_steps=5), small_text, None, None, tmp_path / "run")
    assert status == "failed" and "is not writable" in message and "No checkpoint of it could be saved" in message
    assert summary is not None and summary["steps"] == 5  # the numbers still reach the caller
    assert _leftovers(tmp_path) == []


def test_a_read_only_runs_folder_says_so(tmp_path: Path, small_text: str) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: chmod cannot make one unwritable here")
    tmp_path.chmod(0o500)
    try:
        status, message, _ = run_job(replace(TINY, max_steps=5), small_text, None, None, tmp_path / "run")
    finally:
        tmp_path.chmod(0o700)
    assert status == "failed" and "not writable" in message


def test_sigterm_mid_run_in_a_worker_says_so_on_disk(tmp_path: Path, small_text: str) -> None:
    proc = spawn()
    proc.stdin.write(json.dumps(make_job(replace(TINY, max_steps=1_000_000), small_text, None, None,
                                         tmp_path / "run", 300.0)) + "\n")
    proc.stdin.flush()
    for line in proc.stdout:
        if json.loads(line).get("record", {}).get("step", 0) >= 5:
            break
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    proc.stdin.close()
    proc.stdout.close()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "stopped" and "SIGTERM" in summary["message"]
    assert read_checkpoint(tmp_path / "run")["step"] == summary["steps"]
