"""The shipped reference model (data/reference/) and the function that builds it (engine/load/reference.py)."""

from __future__ import annotations

import json

import pytest
import torch

from engine.load import checkpoint, reference
from engine.train.config import TrainConfig
from engine.transform.data import TextDataset
from engine.transform.model import GPT
from paths import DEFAULT_CORPUS as CORPUS

VAL_TOLERANCE = 0.02  # float16 weights move the loss in the third decimal; the batches are the run's own


def test_shipped_folder_loads_as_float32_without_optimizer_state():
    model, tok, config, metrics = reference.load_reference()
    assert isinstance(model, GPT) and not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert config["n_layer"] == 3 and config["n_head"] == 4 and config["n_embd"] == 128 and config["block_size"] == 64
    assert config["dtype"] == "float32" and config["eval_interval"] == 50 and config["time_budget"] is None
    assert metrics and metrics[-1]["step"] == config["max_steps"]
    raw = checkpoint.read_checkpoint(reference.reference_run_dir())
    assert not set(reference.DROPPED) & set(raw)
    assert raw["model"]["lm_head.weight"].dtype == reference.SHIPPED_DTYPE
    assert tok.vocab_size == model.config.vocab_size
    for name in (checkpoint.CONFIG, checkpoint.METRICS, checkpoint.SUMMARY, reference.README):
        assert (reference.reference_run_dir() / name).is_file()


def test_validation_loss_matches_the_recorded_one():
    model, tok, config, _ = reference.load_reference()
    summary = json.loads((reference.reference_run_dir() / checkpoint.SUMMARY).read_text())
    cfg = TrainConfig.from_dict(config)
    data = TextDataset(CORPUS.read_text(encoding="utf-8"), tok)
    measured = reference.validation_loss(model, data, cfg, cfg.final_eval_batches)
    assert measured == pytest.approx(summary["final_val_loss"], abs=VAL_TOLERANCE)
    assert measured < 2.5  # it learned: a model that knows nothing scores ln(65) = 4.17


def test_timeline_spans_training_and_every_snapshot_loads():
    entries = reference.list_timeline()
    steps = [e["step"] for e in entries]
    final = json.loads((reference.reference_run_dir() / checkpoint.SUMMARY).read_text())["steps"]
    assert len(steps) >= 6 and steps[0] == 0 and steps[-1] == final and steps == sorted(steps)
    for step in steps:
        model, tok = reference.load_timeline_model(step)
        assert all(p.dtype == torch.float32 for p in model.parameters())
    first, last = entries[0]["sample"], entries[-1]["sample"]
    assert first and last and first != last


def test_samples_from_step_0_and_the_final_model_differ():
    def sample(step: int) -> str:
        model, tok = reference.load_timeline_model(step)
        g = torch.Generator().manual_seed(0)
        return tok.decode(model.generate(torch.tensor([tok.encode("\n")]), 40, generator=g)[0].tolist())

    steps = [e["step"] for e in reference.list_timeline()]
    assert sample(steps[0]) != sample(steps[-1])


def test_folder_is_small():
    assert reference.folder_bytes(reference.reference_run_dir()) < reference.SIZE_LIMIT


def test_run_to_show_prefers_the_learners_run(tmp_path):
    assert reference.run_to_show(tmp_path) == reference.reference_run_dir()  # an empty folder: nothing to show
    (tmp_path / checkpoint.CKPT).write_bytes(b"")
    assert reference.run_to_show(tmp_path) == tmp_path


def test_build_on_the_tiny_preset_gives_a_loadable_folder_without_optimizer_state(tmp_path, small_text):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(small_text, encoding="utf-8")
    out = tmp_path / "ref"
    result = reference.build(out, ["--preset", "tiny", "--corpus", str(corpus), "--max-steps", "30", "--quiet"],
                             timeline_kept=3)
    assert result["status"] == "finished" and result["steps"] == 30
    raw = checkpoint.read_checkpoint(out)
    assert "optimizers" not in raw and "rng" not in raw
    assert all(t.dtype == torch.float16 for t in raw["model"].values() if t.is_floating_point())
    model, tok, config, metrics = checkpoint.load_checkpoint(out)
    assert all(p.dtype == torch.float32 for p in model.parameters()) and metrics[-1]["step"] == 30
    steps = [e["step"] for e in checkpoint.list_timeline(out)]
    assert steps[0] == 0 and steps[-1] == 30 and len(steps) <= 3
    for step in steps:
        checkpoint.load_timeline_model(out, step)
    check = reference.check(out, corpus)
    assert check["measured"] == pytest.approx(check["recorded"], abs=VAL_TOLERANCE)
    readme = (out / reference.README).read_text()
    assert "--max-steps 30" in readme and f"{result['val_loss']:.4f}" in readme
    assert not (tmp_path / "ref.building").exists()
