"""engine.train.prepare's decisions about the machine: torch.compile is not tried where kernels cannot be built
(engine.device.compile_blocker), and the run says why in its device sentence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import engine.device
import engine.train.prepare
from engine.train.config import PRESETS
from engine.train.prepare import prepare


def test_compile_blocker_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(engine.device.shutil, "which", lambda name: None)
    assert engine.device.compile_blocker() == "no C compiler (cc, gcc or clang) on the PATH"
    monkeypatch.setattr(engine.device.shutil, "which", lambda name: "/usr/bin/cc")
    monkeypatch.setattr(engine.device.sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    assert engine.device.compile_blocker() == f"no Python headers (Python.h) in {tmp_path}"
    (tmp_path / "Python.h").write_text("")
    assert engine.device.compile_blocker() is None


def test_without_a_compiler_the_run_trains_eagerly_and_says_why(small_text: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.train.prepare, "compile_blocker", lambda: "no C compiler (cc, gcc or clang) on the PATH")
    state = prepare(replace(PRESETS["tiny"], compile=True), small_text)
    assert state.train_model is state.model and state.eval_model is None  # eager: never handed to torch.compile
    assert "No torch.compile here: no C compiler (cc, gcc or clang) on the PATH" in state.device.sentence
    assert any("eager mode" in note for note in state.notes)
