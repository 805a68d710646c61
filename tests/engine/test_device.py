"""engine.device and the device decisions engine.train.prepare makes: GPU choice, bf16, compile and Muon fallbacks.

There is no GPU on the machines these tests run on, so CUDA is a fake: torch.cuda's query functions are
monkeypatched to describe a machine with two GPUs of a chosen compute capability. What a fake cannot prove
(kernels really running in bf16, torch.compile really compiling) is checked on real hardware by
`python -m bench gpu`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from engine import device as device_mod
from engine.device import DeviceInfo, get_device, gpu_for_slot, parse_device, predicted_sentence
from engine.train import prepare as prepare_mod
from engine.train.config import PRESETS
from engine.train.loop import train_loop
from engine.train.muon import Muon
from engine.train.prepare import prepare

TINY = PRESETS["tiny"]


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """get_device caches its choice per process: each test chooses afresh."""
    monkeypatch.setattr(device_mod, "_cache", {})


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> dict:
    """Two fake GPUs (compute capability in `gpu["cc"]`, 9.0 unless a test changes it); records set_device."""
    gpu: dict = {"cc": (9, 0), "current": 0, "set": []}
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: gpu["current"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: f"NVIDIA Fake {i}")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: gpu["cc"])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what emulation reports
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: gpu["set"].append(i))
    yield gpu
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def test_gpu_for_slot_takes_the_gpus_in_turn() -> None:
    assert [gpu_for_slot(s, 2) for s in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert gpu_for_slot(3, 1) == "cuda:0"
    with pytest.raises(ValueError):
        gpu_for_slot(0, 0)
    with pytest.raises(ValueError):
        gpu_for_slot(-1, 2)


def test_parse_device() -> None:
    assert parse_device("cuda:1") == ("cuda", 1)
    assert parse_device("auto") == ("auto", None)
    for bad in ("gpu", "cuda:x", "cpu:1", "cuda:"):
        with pytest.raises(ValueError):
            parse_device(bad)


def test_cuda_n_picks_that_gpu_and_names_it(fake_cuda: dict) -> None:
    info = get_device("cuda:1")
    assert info.index == 1 and info.device == torch.device("cuda", 1)
    assert fake_cuda["set"] == [1]  # kernels without an explicit index go to GPU 1 too
    assert info.sentence == "Training on GPU 1 (NVIDIA Fake 1), bfloat16"
    with pytest.raises(RuntimeError, match="GPU 5"):
        get_device("cuda:5")


def test_plain_cuda_uses_the_current_gpu(fake_cuda: dict) -> None:
    fake_cuda["current"] = 1  # as setup_distributed leaves it for LOCAL_RANK=1
    info = get_device("cuda")
    assert info.index == 1 and info.device == torch.device("cuda", 1)


def test_bf16_only_where_the_gpu_has_it_natively(fake_cuda: dict) -> None:
    fake_cuda["cc"] = (7, 0)  # V100: is_bf16_supported() says True, but bf16 is emulated
    info = get_device("cuda:0")
    assert info.dtype == "float32" and not info.native_bf16
    assert info.sentence.endswith("float32")
    fake_cuda["cc"] = (8, 0)  # A100
    device_mod._cache.clear()
    info = get_device("cuda:0")
    assert info.dtype == "bfloat16" and info.native_bf16


def test_predicted_sentence_leaves_this_process_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe() -> bool:
        raise AssertionError("predicted_sentence must not run the bf16 speed probe")

    monkeypatch.setattr(device_mod, "_measure_bf16_cpu", no_probe)
    monkeypatch.setattr(device_mod, "_bf16_cpu_faster", None)
    torch.set_num_threads(1)
    sentence = predicted_sentence("cpu")
    assert torch.get_num_threads() == 1
    assert sentence.startswith("Training on CPU, ")
    assert predicted_sentence("cpu", threads=3).startswith("Training on CPU, 3 threads")


def test_predicted_sentence_on_cuda_selects_no_gpu(fake_cuda: dict) -> None:
    fake_cuda["cc"] = (7, 5)
    assert predicted_sentence("cuda:1") == "Training on GPU 1 (NVIDIA Fake 1), float32"
    assert predicted_sentence() == "Training on GPU 0 (NVIDIA Fake 0), float32"
    assert fake_cuda["set"] == []  # no set_device, no TF32 switch: only queries


# ---------------------------------------------------------------------------------------------------------
# What prepare() decides from the device


def fake_device(monkeypatch: pytest.MonkeyPatch, **changes) -> None:
    """Make prepare() see a CPU DeviceInfo with `changes` (e.g. compile=True, native_bf16=False)."""
    info = replace(get_device("cpu", "float32", 1, 1), **changes)
    monkeypatch.setattr(prepare_mod, "get_device", lambda *a, **k: info)


class BrokenCompiled(nn.Module):
    """What a torch.compile whose compiler is missing returns: fine to build, fails at the first forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        raise RuntimeError("backend='inductor' raised: no working C compiler found")


def test_compile_failing_at_the_first_forward_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch,
                                                                 small_text: str) -> None:
    monkeypatch.setattr(torch, "compile", lambda model, **kw: BrokenCompiled(model))
    state = prepare(replace(TINY, max_steps=5, compile=True), small_text)
    assert state.train_model is state.model
    assert any("torch.compile failed" in n and "no working C compiler" in n for n in state.notes)
    assert "torch.compile failed" in state.device.sentence
    assert all(p.grad is None for p in state.model.parameters())  # the try left no gradients behind
    records: list[dict] = []
    outcome = train_loop(state, on_record=records.append)
    assert outcome.status == "finished" and state.step == 5
    assert records[0]["notes"] == state.notes and "notes" not in records[1]


def test_compile_that_works_is_used_and_timed(monkeypatch: pytest.MonkeyPatch, small_text: str) -> None:
    calls: list[nn.Module] = []

    def compile_(model: nn.Module, **kw) -> nn.Module:
        calls.append(model)
        return model

    monkeypatch.setattr(torch, "compile", compile_)
    fake_device(monkeypatch, compile=True)
    state = prepare(replace(TINY, max_steps=None, time_budget=600.0), small_text)
    assert calls and any(n.startswith("Compiled with torch.compile in") for n in state.notes)


def test_a_cpu_without_bf16_instructions_says_so(monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    """The CPU's DeviceInfo reads its bf16 support from the CPU: Muon's Newton-Schulz in emulated bf16 took
    1.6-1.9 s a step on this two-core AVX2 machine, so prepare() must see it to switch to float32."""
    for native in (False, True):
        monkeypatch.setattr(device_mod, "_cpu_has_native_bf16", lambda native=native: native)
        device_mod._cache.clear()
        assert get_device("cpu", "float32", 1, 1).native_bf16 is native


def test_short_runs_skip_compile(monkeypatch: pytest.MonkeyPatch, small_text: str) -> None:
    def no_compile(model: nn.Module, **kw) -> nn.Module:
        raise AssertionError("a 60 s run must not spend its budget compiling")

    monkeypatch.setattr(torch, "compile", no_compile)
    fake_device(monkeypatch, compile=True)
    state = prepare(replace(TINY, max_steps=None, time_budget=60.0), small_text)
    assert state.train_model is state.model
    assert any("No torch.compile" in n for n in state.notes)


def test_muon_orthogonalises_in_float32_without_native_bf16(monkeypatch: pytest.MonkeyPatch, small_text: str) -> None:
    fake_device(monkeypatch, type="cuda", native_bf16=False)  # e.g. a cc 7.x GPU (the tensors stay on the CPU)
    monkeypatch.setattr(DeviceInfo, "device", property(lambda self: torch.device("cpu")))
    state = prepare(replace(TINY, optimizer="muon", max_steps=3), small_text)
    assert state.config.optimizer == "muon" and state.config.muon_ns_dtype == "float32"
    muon = [o for o in state.optimizers if isinstance(o, Muon)]
    assert len(muon) == 1 and muon[0].ns_dtype == torch.float32
    assert any("float32" in n and "GPU lacks fast bf16" in n for n in state.notes)
    assert "float32" in state.device.sentence
    assert train_loop(state).status == "finished"


def test_muon_stays_where_bf16_is_native(monkeypatch: pytest.MonkeyPatch, small_text: str) -> None:
    fake_device(monkeypatch, native_bf16=True)  # e.g. a CPU with AVX-512 BF16 or AMX
    state = prepare(replace(TINY, optimizer="muon", max_steps=3), small_text)
    assert any(isinstance(o, Muon) for o in state.optimizers) and not state.notes


def test_dropout_seed_is_offset_after_the_weights(small_text: str) -> None:
    state = prepare(replace(TINY, max_steps=3, seed=7), small_text)
    assert torch.initial_seed() == 7  # rank 0 of 1: seed + 0
    again = prepare(replace(TINY, max_steps=3, seed=7), small_text)
    for a, b in zip(state.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_single_thread_nests_and_restores_the_count() -> None:
    from engine.device import single_thread

    before = torch.get_num_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
        with single_thread():  # a show-me function calling another
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_cpu_precision_is_measured_on_the_runs_own_shape(monkeypatch: pytest.MonkeyPatch, small_text: str) -> None:
    """Issue 16: with dtype "auto" on a bf16-capable CPU the choice is timed on the run's model and batch (a key
    per shape), and a run keeps what that measurement chose."""
    fake_device(monkeypatch, dtype="bfloat16")
    keys: list = []

    def choose(step, key) -> str:
        step(True)
        step(False)  # both precisions really run on the model
        keys.append(key)
        return "float32" if key[4] < 16 else "bfloat16"  # key[4]: the batch size

    monkeypatch.setattr(prepare_mod, "faster_precision", choose)
    small = prepare(replace(TINY, dtype="auto", batch_size=8), small_text)
    big = prepare(replace(TINY, dtype="auto", batch_size=32), small_text)
    assert small.device.dtype == "float32" and "bf16" not in small.device.sentence
    assert big.device.dtype == "bfloat16" and big.device.sentence.endswith("bf16")
    assert keys[0] != keys[1]
    assert all(p.grad is None for p in small.model.parameters())  # the tries leave no gradients behind


def test_faster_precision_keeps_the_faster_and_remembers_it() -> None:
    import time as time_mod

    calls: list[bool] = []

    def step(bf16: bool) -> None:
        calls.append(bf16)
        time_mod.sleep(0.001 if bf16 else 0.004)

    assert device_mod.faster_precision(step, key=("test", 1)) == "bfloat16"
    n = len(calls)
    assert device_mod.faster_precision(step, key=("test", 1)) == "bfloat16" and len(calls) == n  # remembered
    assert device_mod.faster_precision(lambda bf16: time_mod.sleep(0.003 if bf16 else 0.001), key=("test", 2)) == "float32"
