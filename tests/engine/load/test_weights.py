"""engine.load.weights: a checkpoint taken apart adds up to its real file (the tied matrix stored once, the optimizer's
moments where the extra bytes go), and a run exported to safetensors loads back from that file alone into a model
that gives exactly the same logits and the same greedy text, with its embedding still tied to its head."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.load import checkpoint
from engine.load.reference import reference_run_dir
from engine.load.weights import (
    BYTES_PER_PARAM,
    anatomy,
    export_safetensors,
    greedy_text,
    load_safetensors,
    predicted_bytes,
    read_metadata,
    round_trip,
)
from engine.train.config import PRESETS
from engine.train.job import run_job
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import train_bpe


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real tiny run (AdamW, 60 steps): its ckpt.pt holds the optimizer state, as a learner's does."""
    from tests.engine.conftest import CORPUS

    run_dir = tmp_path_factory.mktemp("weights") / "run"
    status, message, _ = run_job(PRESETS["tiny"], CORPUS.read_text(encoding="utf-8")[:20_000], None, None, run_dir)
    assert status == "finished", message
    return run_dir


def test_the_reference_checkpoint_adds_up_to_its_file() -> None:
    a = anatomy(reference_run_dir())
    model, _, _, _ = checkpoint.load_checkpoint(reference_run_dir())
    assert a.parameters == model.num_params(non_embedding=False) == 607_232
    assert a.file_bytes == (reference_run_dir() / checkpoint.CKPT).stat().st_size
    assert a.tensor_data_bytes + a.pickle_bytes + a.container_bytes == a.file_bytes
    assert a.container_bytes > 0 and a.pickle_bytes > 0
    # shipped in float16, without optimizer state: the weights are 2 bytes per parameter and most of the file
    assert a.weights_dtype == "float16"
    assert a.weights_bytes == 2 * a.parameters == a.tensor_data_bytes
    assert [p.key for p in a.parts][0] == "model" and "optimizers" not in [p.key for p in a.parts]
    assert a.weights_bytes < a.file_bytes < 1.1 * a.weights_bytes
    predicted = {p.format: p.bytes for p in a.predictions}
    assert predicted == {f: round(a.parameters * b) for f, b in BYTES_PER_PARAM.items()}
    assert predicted["bf16"] == a.weights_bytes  # a 16-bit file is what the 16-bit prediction says
    # one row per state-dict entry; the head is a second name for the token embedding
    assert len(a.tensors) == len(model.state_dict())
    tied = [r for r in a.tensors if r.tied_to]
    assert [(r.name, r.tied_to) for r in tied] == [("lm_head.weight", "transformer.wte.weight")]
    assert sum(r.parameters for r in a.tensors if not r.tied_to) == a.parameters
    wte = next(r for r in a.tensors if r.name == "transformer.wte.weight")
    assert wte.shape == (65, 128) and wte.bytes == 65 * 128 * 2


def test_a_learners_checkpoint_is_mostly_optimizer_state_and_stores_the_tied_matrix_once(tiny_run: Path) -> None:
    a = anatomy(tiny_run)
    parts = {p.key: p for p in a.parts}
    fp32 = predicted_bytes(a.parameters, "fp32")
    assert a.weights_dtype == "float32" and a.weights_bytes == fp32
    # AdamW: two float32 moments per parameter (and a step counter per parameter tensor)
    assert 2 * fp32 <= parts["optimizers"].tensor_bytes < 2 * fp32 + 1_000
    assert {"model", "optimizers", "rng", "metrics", "tokenizer", "train_config", "model_config"} <= set(parts)
    assert a.file_bytes > 3 * fp32
    # the zip's tensor records are exactly the parts' storages: the tied embedding/head is written once
    assert a.tensor_data_bytes == sum(p.tensor_bytes for p in a.parts)
    assert parts["model"].tensor_bytes == 4 * a.parameters
    assert len({(r.shape, r.tied_to) for r in a.tensors if r.tied_to}) == 1
    # and it loads back tied
    ckpt = checkpoint.read_checkpoint(tiny_run)
    assert ckpt["model"]["lm_head.weight"].data_ptr() == ckpt["model"]["transformer.wte.weight"].data_ptr()
    # what each entry adds roughly sums to the file (each measured alone, rounded by the zip's alignment)
    assert abs(sum(p.bytes for p in a.parts) - a.file_bytes) < 0.05 * a.file_bytes


def test_export_then_load_gives_the_same_model_bit_for_bit(tiny_run: Path, tmp_path: Path) -> None:
    path = export_safetensors(tiny_run, tmp_path / "out" / "model.safetensors")
    original, tok, _, _ = checkpoint.load_checkpoint(tiny_run)
    loaded, loaded_tok = load_safetensors(path)
    assert loaded_tok.to_dict() == tok.to_dict()
    assert asdict(loaded.config) == asdict(original.config)
    # the tie is restored, not duplicated: one parameter under both names
    assert loaded.transformer.wte.weight is loaded.lm_head.weight
    for name, t in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], t), name
    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
    assert "lm_head.weight" in names and "transformer.wte.weight" not in names
    assert read_metadata(path)["transformer.wte.weight"] == "lm_head.weight"  # save_model notes the dropped alias
    # the file is the float32 weights plus a small JSON header
    fp32 = predicted_bytes(original.num_params(non_embedding=False), "fp32")
    assert fp32 < path.stat().st_size < fp32 + 10_000
    x = torch.randint(0, original.config.vocab_size, (2, original.config.block_size))  # (B, T)
    with torch.no_grad():
        assert torch.equal(original(x)[0], loaded(x)[0])
    assert greedy_text(loaded, loaded_tok, "\n", 20) == greedy_text(original, tok, "\n", 20)
    assert not list(path.parent.glob("*.tmp"))


def test_the_reference_round_trip_is_exact(tmp_path: Path) -> None:
    rt = round_trip(reference_run_dir(), tmp_path / "reference.safetensors", prompt="ROMEO:", n_tokens=40)
    assert rt.identical and rt.max_logit_difference == 0.0
    assert rt.original_text == rt.loaded_text and rt.original_text.startswith("ROMEO:")
    assert len(rt.original_text) == len("ROMEO:") + 40  # characters: one per token
    assert rt.parameters == 607_232 and rt.file_bytes > 4 * rt.parameters  # exported in float32
    assert rt.ckpt_bytes < rt.file_bytes  # the shipped ckpt.pt is float16
    assert "lm_head.weight" in rt.stored_names and "transformer.wte.weight" not in rt.stored_names


def test_a_bpe_tokenizer_travels_in_the_metadata(tmp_path: Path, small_text: str) -> None:
    tok = train_bpe(small_text[:5_000], vocab_size=300)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    checkpoint.save_checkpoint(tmp_path / "run", {"model": model.state_dict(), "model_config": asdict(model.config),
                                                  "tokenizer": tok.to_dict(), "train_config": {}})
    loaded, loaded_tok = load_safetensors(export_safetensors(tmp_path / "run", tmp_path / "bpe.safetensors"))
    assert loaded_tok.encode("To be, or not") == tok.encode("To be, or not")
    assert greedy_text(loaded, loaded_tok, "To be", 5) == greedy_text(model, tok, "To be", 5)


def test_a_safetensors_file_without_a_model_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ValueError, match="not written by export_safetensors"):
        load_safetensors(path)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        predicted_bytes(10, "fp8")
