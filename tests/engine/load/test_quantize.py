"""engine.load.quantize: int8 per-output-channel quantisation done for real. Every element within half a step of the
original, the Linear weights at about a quarter of their float32 bytes, a saved file that loads back to the same
model, and a trained model whose validation loss barely moves, measured on the same batches as the original."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.load import checkpoint
from engine.load.quantize import (
    QMAX,
    compare_quantized,
    dequantize,
    linear_weight_names,
    load_quantized,
    quantize_int8,
    quantize_model,
    save_quantized,
)
from engine.load.reference import reference_run_dir
from engine.train.config import PRESETS
from engine.train.job import run_job
from tests.engine.conftest import CORPUS


@pytest.fixture(scope="module")
def text() -> str:
    return CORPUS.read_text(encoding="utf-8")[:20_000]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, text: str) -> Path:
    """A real tiny run, trained 60 steps (validation loss from about 4.1 to about 3.4)."""
    run_dir = tmp_path_factory.mktemp("quantize") / "run"
    status, message, _ = run_job(PRESETS["tiny"], text, None, None, run_dir)
    assert status == "finished", message
    return run_dir


def test_every_element_is_within_half_a_step_of_the_original() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, 32, generator=g) * torch.logspace(-3, 0, 48)[:, None]  # (48, 32): rows of very different size
    w[5] = 0.0  # a dead row
    t = quantize_int8(w)
    assert t.q.dtype == torch.int8 and t.q.shape == (48, 32) and t.scale.shape == (48,)
    assert int(t.q.abs().max()) <= QMAX and int(t.q.min()) >= -QMAX  # symmetric: -128 unused
    err = (w - t.dequantize()).abs()  # (48, 32)
    assert bool((err <= t.scale[:, None] / 2 * (1 + 1e-6)).all())
    live = [r for r in range(48) if r != 5]
    assert t.q[live].abs().amax(dim=1).eq(QMAX).all()  # each row's largest weight uses the whole range
    assert t.dequantize()[5].eq(0).all()
    # per row, the small rows get a fine grid: one scale for all would have rounded them to nothing
    assert float(t.scale[0]) < float(t.scale[-1]) / 100


def test_a_trained_tiny_model_keeps_its_loss_at_a_quarter_of_the_bytes(tiny_run: Path, text: str,
                                                                     tmp_path: Path) -> None:
    r = compare_quantized(tiny_run, text, out_dir=tmp_path, n_tokens=20)
    model, _, _, _ = checkpoint.load_checkpoint(tiny_run)
    assert [layer.name for layer in r.layers] == linear_weight_names(model)
    # 1 byte per weight + a float32 scale per row: a quarter plus 1/in_features (in is 32 or 128 here)
    assert 0.25 < r.linear_int8_bytes / r.linear_fp32_bytes < 0.25 + 1 / 32
    for layer in r.layers:
        out, inp = layer.shape
        assert layer.int8_bytes == out * inp + 4 * out and layer.fp32_bytes == 4 * out * inp
        assert layer.max_error <= layer.max_half_step * (1 + 1e-6)
    # the embedding (= the head) and every LayerNorm stay float32
    assert "transformer.wte.weight" in r.kept_float and "lm_head.weight" not in r.kept_float
    assert all(n.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight", "wte.weight", "wpe.weight")) for n in r.kept_float)
    assert r.model_fp32_bytes == 4 * model.num_params(non_embedding=False)
    assert r.model_int8_bytes < 0.4 * r.model_fp32_bytes
    # real files: the int8 one a little over its tensors (a JSON header), well under the float32 one
    assert r.int8_file_bytes < 0.4 * r.fp32_file_bytes
    assert r.model_int8_bytes < r.int8_file_bytes < r.model_int8_bytes + 10_000
    assert Path(r.int8_path).stat().st_size == r.int8_file_bytes and Path(r.fp32_path).is_file()
    # trained (so there is something to lose), and int8 loses almost none of it, on the same batches
    assert r.val_loss_fp32 < 3.8
    assert abs(r.val_loss_int8 - r.val_loss_fp32) < 0.01
    assert r.val_batches == PRESETS["tiny"].final_eval_batches
    assert r.text_fp32.startswith(r.prompt) and r.text_int8.startswith(r.prompt)


def test_the_saved_int8_file_loads_back_to_the_same_model(tiny_run: Path, tmp_path: Path) -> None:
    model, tok, _, _ = checkpoint.load_checkpoint(tiny_run)
    qs = quantize_model(model)
    path = save_quantized(qs, tok, tmp_path / "q.safetensors")
    loaded, loaded_tok = load_quantized(path)
    assert loaded_tok.to_dict() == tok.to_dict() and loaded.ties == {"lm_head.weight": "transformer.wte.weight"}
    assert all(t.q.dtype == torch.int8 for t in loaded.int8.values()) and loaded.nbytes == qs.nbytes
    a, b = dequantize(qs), dequantize(loaded)
    assert b.transformer.wte.weight is b.lm_head.weight  # still tied
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, model.config.vocab_size, (8, model.config.block_size), generator=g)  # (B, T)
    with torch.no_grad():
        assert torch.equal(a(x)[0], b(x)[0])
        rounded, original = a(x)[0], model(x)[0]  # (B, T, vocab) logits
        assert not torch.equal(rounded, original)  # rounded, so not the original numbers ...
        # ... but close to them: on average (a rare position near a tie in a normalisation can move further, so
        # not every logit), and the next character each position predicts is almost always the same
        assert float((rounded - original).abs().mean()) < 0.05
        assert float((rounded.argmax(-1) == original.argmax(-1)).float().mean()) > 0.95


def test_quantising_the_embeddings_too_quantises_the_tied_head(tiny_run: Path) -> None:
    model, _, _, _ = checkpoint.load_checkpoint(tiny_run)
    qs = quantize_model(model, include_embeddings=True)
    assert {"transformer.wte.weight", "transformer.wpe.weight"} <= set(qs.int8)
    assert all("ln_" in name for name in qs.floats)
    q = dequantize(qs)
    assert torch.equal(q.lm_head.weight, qs.int8["transformer.wte.weight"].dequantize())


def test_the_reference_model_in_int8(tmp_path: Path) -> None:
    r = compare_quantized(reference_run_dir(), CORPUS.read_text(encoding="utf-8"), n_batches=10, n_tokens=40)
    assert 0.25 < r.linear_int8_bytes / r.linear_fp32_bytes < 0.26  # in_features 128 or 512
    assert abs(r.val_loss_int8 - r.val_loss_fp32) < 0.005
    assert r.val_loss_fp32 < 1.8
    assert r.fp32_path is None and r.int8_path is None  # measured in a temporary folder, then removed
