"""bench.cli, bench_report and bench_gpu: the report, the GPU check's plumbing, its no-CUDA answer and its CPU dry run.

The GPU checks themselves need a CUDA machine (`python -m bench gpu`); here they run on the CPU with the
`tiny` preset, which proves their code paths, not the GPU's behaviour.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from bench import cli as bench
from bench import gpu as bench_gpu
from bench import gpu_packing, gpu_paths
from bench import report as bench_report
from engine.train.config import PRESETS

REPO = Path(__file__).resolve().parents[2]
TINY = replace(PRESETS["tiny"], device="cpu", eval_batches=2, final_eval_batches=2)


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docs/benchmarks.md redirected to a temporary file."""
    path = tmp_path / "benchmarks.md"
    monkeypatch.setattr(bench_report, "BENCHMARKS_MD", path)
    return path


def test_append_section_writes_a_dated_table(report: Path) -> None:
    bench_report.append_section("Demo", [("steps", "12"), ("val loss", "1.5")])
    text = report.read_text()
    assert text.startswith("# Benchmarks") and "## Demo (" in text and "| steps | 12 |" in text
    assert "Machine: " in text


def test_gpu_check_without_cuda_exits_0_and_writes_nothing(report: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["gpu"]) == 0
    assert bench_gpu.NO_CUDA in capsys.readouterr().out
    assert not report.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would really run")
def test_python_m_engine_bench_gpu_without_cuda() -> None:
    md = bench_report.BENCHMARKS_MD
    before = md.read_bytes() if md.exists() else None
    done = subprocess.run([sys.executable, "-m", "bench", "gpu"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and bench_gpu.NO_CUDA in done.stdout
    assert (md.read_bytes() if md.exists() else None) == before


def test_benchmarks_do_not_import_the_command_line() -> None:
    """bench_train and bench_tokenize take the report helpers from bench_report, not from bench.cli (which
    imports them: a cycle)."""
    code = "import sys, bench.train, bench.tokenization, bench.gpu; print('bench.cli' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_gpu_report_prints_one_line_per_check_and_appends_the_figures(report: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    def broken() -> list:
        raise bench_gpu.CheckFailed("loss did not fall")

    def skipped() -> list:
        raise bench_gpu.CheckSkipped("this machine has 1 GPU")

    fake = [("bf16", lambda: [("bf16", "bfloat16 chosen"), ("device", "Training on the GPU")]),
            ("Muon", broken), ("second GPU", skipped), ("runs per GPU", lambda: [("runs one GPU holds", "4 at once")])]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(bench_gpu, "checks", lambda plan: fake)
    assert bench_gpu.run(time_budget=5.0) == 1
    out = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in out if not ln.startswith(" ")][:4] == [
        "PASS  bf16", "FAIL  Muon", "SKIP  second GPU", "PASS  runs per GPU"]
    assert any(ln.startswith("PASS  bf16: bfloat16 chosen (") for ln in out)
    assert "      device: Training on the GPU" in out  # the other figures, indented under their check
    assert any(ln.startswith("SKIP  second GPU: this machine has 1 GPU (") for ln in out)
    text = report.read_text()
    assert "| bf16 | bfloat16 chosen |" in text and "| runs one GPU holds | 4 at once |" in text
    assert "FAILED: CheckFailed: loss did not fall" in text and "| second GPU | skipped: this machine has 1 GPU |" in text
    assert "| checks failed | Muon |" in text


def test_gpu_plan_the_dry_run_trains_the_lesson_options_on_toy_models() -> None:
    plan = bench_gpu.make_plan(dry_run=True)
    assert plan.dry_run and plan.device == "cpu" and plan.lesson.device == "cpu" and plan.pack_counts == (1, 2)
    lesson = plan.lesson
    assert lesson.model.rope and lesson.model.qk_norm and lesson.optimizer == "muon" and lesson.muon_split_qkv
    assert lesson.model.n_embd == PRESETS["tiny"].model.n_embd  # a toy model: the test runs in seconds
    names = [name for name, _ in bench_gpu.checks(plan)]
    for name in ("lesson preset", "worker path", "Ray, fractional GPU", "DDP read-back", "peak probe", "runs per GPU"):
        assert name in names


def test_gpu_ray_check_says_why_it_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    with pytest.raises(bench_gpu.CheckSkipped, match="ray is not installed"):
        gpu_paths.check_ray(TINY)


def test_gpu_packing_counts_the_runs_a_gpu_holds() -> None:
    def row(count: int, *rates: float) -> gpu_packing.Packed:
        return gpu_packing.Packed(count, list(rates), [100] * count, None, None)

    assert gpu_packing.slots([row(1, 1000.0), row(2, 990.0, 980.0), row(4, 900.0, 850.0, 820.0, 810.0),
                              row(8, 600.0, 610.0, 590.0, 620.0, 600.0, 605.0, 598.0, 601.0)]) == 4
    assert gpu_packing.slots([row(1, 1000.0), row(2, 700.0, 990.0)]) == 1  # the slowest run counts, not the median


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the real check would run")
def test_gpu_checks_dry_run_prints_a_line_per_check_on_the_cpu() -> None:
    """`python -m bench gpu --cpu-dry-run`: every check of the list, end to end with toy models, one line each."""
    md = bench_report.BENCHMARKS_MD
    before = md.read_bytes() if md.exists() else None
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_COURSE_RAY_ADDRESS", "COURSE_RAY_ADDRESS")}
    done = subprocess.run([sys.executable, "-m", "bench", "gpu", "--cpu-dry-run", "--pack-seconds", "1"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    verdicts = {}
    for line in done.stdout.splitlines():
        verdict, _, rest = line.partition("  ")
        if verdict in ("PASS", "FAIL", "SKIP"):
            verdicts[rest.split(":")[0]] = verdict
    names = [name for name, _ in bench_gpu.checks(bench_gpu.make_plan(dry_run=True))]
    assert list(verdicts) == names, done.stdout + done.stderr[-3000:]
    for name in ("bf16", "Muon", "lesson preset", "worker path", "DDP read-back", "peak probe", "runs per GPU"):
        assert verdicts[name] == "PASS", done.stdout + done.stderr[-3000:]
    for name in ("torch.compile", "budgeted run", "no stalls", "second GPU", "2-GPU NCCL run", "Ray, fractional GPU"):
        assert verdicts[name] == "SKIP", done.stdout
    assert done.returncode == 0 and "GPU checks: all passed or skipped" in done.stdout
    assert "1 at once" in done.stdout and "2 at once" in done.stdout  # each count's runs' tokens/s
    assert (md.read_bytes() if md.exists() else None) == before  # a dry run writes nothing


class Wrapped(nn.Module):
    """Stands in for torch.compile's module on a CPU (real inductor needs a C++ toolchain and a minute)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)


def test_gpu_checks_run_on_a_cpu_with_the_tiny_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", lambda model, **kw: Wrapped(model))
    assert dict(bench_gpu.check_bf16("cpu"))["bf16 autocast matmul"] == "ok"
    assert "x)" in dict(bench_gpu.check_compile(TINY, steps=2))["forward+backward, compiled"]
    assert "Muon" in bench_gpu.check_muon(replace(TINY, muon_lr=0.02), steps=20)[0][1]
    rows = dict(bench_gpu.check_budget(TINY, 2.0))
    assert "Compiled with torch.compile" in rows["  device sentence"]
    with pytest.raises(bench_gpu.CheckFailed, match="stayed on cpu"):  # on a GPU the ids move there
        bench_gpu.check_no_stalls(TINY, steps=10)


def test_nanogpt_iteration_lines_are_read_and_its_config_matches_the_readme() -> None:
    from bench import nanogpt as bench_nanogpt

    line = "iter 12: loss 2.4912, time 31.07ms, mfu 0.05%"
    m = bench_nanogpt.ITER_LINE.match(line)
    assert m and (int(m.group(1)), float(m.group(2))) == (12, 31.07)
    c = bench_nanogpt.readme_config("adamw", 300)
    shape = c.model
    assert (shape.n_layer, shape.n_head, shape.n_embd, c.batch_size, shape.block_size, shape.dropout) == (4, 4, 128, 12, 64, 0.0)
    assert c.batch_size * shape.block_size == bench_nanogpt.TOKENS_PER_ITER
    with pytest.raises(SystemExit, match="not a nanoGPT checkout"):
        bench_nanogpt.run(REPO / "no-such-folder", write=False)


def test_generation_timing_on_a_toy_model() -> None:
    from bench.generate import time_generation
    from engine.transform.model import GPT, GPTConfig
    from engine.transform.tokenization import CharTokenizer

    tok = CharTokenizer.from_text("ROMEO: and JULIET")
    model = GPT(GPTConfig(block_size=8, vocab_size=tok.vocab_size, n_layer=1, n_head=1, n_embd=8)).train()
    t = time_generation(model, tok, n_tokens=12, repeat=2)
    assert 0 < t["best_s"] <= t["median_s"] and model.training  # the mode it found is restored


def test_versus_exports_the_commit_it_compares_against(tmp_path: Path) -> None:
    from bench import versus as bench_versus

    tree = bench_versus.export_commit("HEAD", tmp_path)
    assert (tree / "bench" / "train.py").is_file() and (tree / "paths.py").is_file()
    assert (tree / "data" / "tinyshakespeare.txt").is_file()
    old = bench_versus.export_commit(bench_versus.BEFORE_COMMIT, tmp_path / "before")
    assert (old / "engine" / "bench_train.py").is_file() and not (old / "bench").exists()  # its own layout, whole
