"""Quantisation done for real: a trained model's weights stored as 8-bit integers, then run again.

Symmetric per-output-channel int8, where most weight-only int8 inference starts (Jacob et al. 2018 for integer
quantisation; per-channel scales as in PyTorch's weight quantisers and LLM.int8's, Dettmers et al. 2022). For a
Linear weight W (out, in), each output row r gets its own scale s_r = max|W_r| / 127, and

    q = round(W / s)  clamped to [-127, 127], stored as int8      W' = q * s  (what the model runs with)

so every element is off by at most s_r / 2. The blocks' Linears are quantised; the LayerNorms and, unless
`include_embeddings=True`, the tied embedding and head stay float32. The compute stays float32 (`dequantize`
builds a GPT that runs as any other): the gain is memory and bandwidth. `compare_quantized` saves the int8 state as
a real .safetensors file and sets its size and validation loss against the original's on the same batches.
docs/architecture.md ("Checkpoints, safetensors and int8") says why each part is or is not quantised.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.files import write_atomically
from engine.load import checkpoint
from engine.load.reference import validation_loss
from engine.load.weights import export_safetensors, greedy_text, tensor_rows
from engine.train.config import TrainConfig
from engine.transform.data import TextDataset
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import Tokenizer, tokenizer_from_dict

QMAX = 127  # symmetric int8: [-127, 127]
FORMAT = "llm-course-gpt-int8"  # the metadata tag of a file save_quantized wrote


@dataclass(frozen=True)
class Int8Tensor:
    """A float matrix stored as int8 values and one float32 scale per row: W ~= q * scale[:, None]."""

    q: torch.Tensor  # (out, in) int8
    scale: torch.Tensor  # (out,) float32

    def dequantize(self) -> torch.Tensor:
        return self.q.float() * self.scale[:, None]  # (out, in) * (out, 1) -> (out, in) float32

    @property
    def nbytes(self) -> int:
        """What it stores: one byte per weight, four per row's scale."""
        return self.q.numel() * self.q.element_size() + self.scale.numel() * self.scale.element_size()


def quantize_int8(w: torch.Tensor) -> Int8Tensor:
    """Symmetric per-row int8: each row's largest magnitude becomes 127 (a row of zeros gets scale 1).

    >>> t = quantize_int8(torch.tensor([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]]))
    >>> t.q.tolist(), [round(s, 6) for s in t.scale.tolist()]
    ([[64, -127, 32], [0, 0, 0]], [0.007874, 1.0])
    >>> t.nbytes  # 6 int8 values + 2 float32 scales
    14
    """
    w = w.detach().float()  # (out, in)
    amax = w.abs().amax(dim=1)  # (out,)
    scale = torch.where(amax > 0, amax / QMAX, torch.ones_like(amax))  # (out,)
    q = torch.round(w / scale[:, None]).clamp(-QMAX, QMAX).to(torch.int8)  # (out, in)
    return Int8Tensor(q=q, scale=scale)


def linear_weight_names(model: GPT) -> list[str]:
    """The weights of the Linear layers inside the blocks, in state-dict order (the output head is left out: it
    is the token embedding, tied).

    >>> names = linear_weight_names(GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)))
    >>> [n.removeprefix("transformer.h.0.") for n in names]
    ['attn.c_attn.weight', 'attn.c_proj.weight', 'mlp.c_fc.weight', 'mlp.c_proj.weight']
    """
    return [f"{name}.weight" for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.startswith("transformer.h.")]


@dataclass(frozen=True)
class QuantizedState:
    """A model with some weights as `Int8Tensor` and the rest float32; the tied head is stored once."""

    config: GPTConfig
    int8: dict[str, Int8Tensor]
    floats: dict[str, torch.Tensor]  # LayerNorms, embeddings (unless quantised) ...
    ties: dict[str, str]  # a second name -> the name its matrix is stored under

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.int8.values()) + sum(t.numel() * t.element_size() for t in self.floats.values())


def quantize_model(model: GPT, include_embeddings: bool = False) -> QuantizedState:
    """Quantise the blocks' Linear weights (and with `include_embeddings` the token and position embeddings, per
    row) to int8; keep everything else float32."""
    targets = set(linear_weight_names(model))
    if include_embeddings:
        targets |= {"transformer.wte.weight", "transformer.wpe.weight"}
    rows = tensor_rows(model.state_dict())
    ties = {r.name: r.tied_to for r in rows if r.tied_to is not None}
    state = model.state_dict()
    int8, floats = {}, {}
    for name, t in state.items():
        if name in ties:
            continue  # stored under the name it is tied to
        if name in targets:
            int8[name] = quantize_int8(t)
        else:
            floats[name] = t.detach().float().clone()
    return QuantizedState(config=model.config, int8=int8, floats=floats, ties=ties)


def dequantize(qs: QuantizedState, device: str | torch.device = "cpu") -> GPT:
    """A float32 GPT (eval mode) running with the quantised weights q * scale: what int8 storage serves."""
    state = {**qs.floats, **{name: t.dequantize() for name, t in qs.int8.items()}}
    for alias, kept in qs.ties.items():
        state[alias] = state[kept]  # both names copy the same values into the one (tied) parameter
    model = GPT(qs.config)
    model.load_state_dict(state)
    model.to(device)
    model.eval()
    return model


def save_quantized(qs: QuantizedState, tokenizer: Tokenizer, path: Path | str) -> Path:
    """Write the quantised state as .safetensors: `NAME.q` (int8), `NAME.scale` (float32), the float tensors under
    their own names; the config, tokenizer and ties as metadata. Written atomically. Returns the path."""
    tensors = {name: t.contiguous() for name, t in qs.floats.items()}
    for name, t in qs.int8.items():
        tensors[f"{name}.q"], tensors[f"{name}.scale"] = t.q.contiguous(), t.scale.contiguous()
    metadata = {"format": FORMAT, "model_config": json.dumps(asdict(qs.config)),
                "tokenizer": json.dumps(tokenizer.to_dict()), "ties": json.dumps(qs.ties),
                "scheme": "int8, symmetric, one float32 scale per output row"}
    return write_atomically(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_quantized(path: Path | str) -> tuple[QuantizedState, Tokenizer]:
    """The quantised state and tokenizer from a file `save_quantized` wrote (`dequantize` it to run it)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} was not written by save_quantized")
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    int8 = {name.removesuffix(".q"): Int8Tensor(q=t, scale=tensors[name.removesuffix(".q") + ".scale"])
            for name, t in tensors.items() if name.endswith(".q")}
    floats = {name: t for name, t in tensors.items()
              if not name.endswith((".q", ".scale"))}
    qs = QuantizedState(config=GPTConfig.from_dict(json.loads(meta["model_config"])), int8=int8, floats=floats,
                        ties=json.loads(meta["ties"]))
    return qs, tokenizer_from_dict(json.loads(meta["tokenizer"]))


# ---- the comparison a lesson shows -----------------------------------------------------------------------


@dataclass(frozen=True)
class LayerQuant:
    """One quantised matrix: its sizes and how far its int8 version is from the original."""

    name: str
    shape: tuple[int, ...]
    fp32_bytes: int
    int8_bytes: int  # int8 values + float32 scales
    max_error: float  # largest |W - q * s| over the matrix
    max_half_step: float  # largest s / 2: the bound each row's error stays within
    mean_scale: float


@dataclass(frozen=True)
class QuantReport:
    """Show-me data: a run's model against its int8 version, in size, validation loss and text."""

    layers: list[LayerQuant]
    kept_float: list[str]  # what stayed float32 (LayerNorms, embeddings unless quantised)
    linear_fp32_bytes: int  # the quantised matrices in float32 ...
    linear_int8_bytes: int  # ... and in int8 with their scales
    model_fp32_bytes: int  # the whole model in float32 (the tied matrix once), in memory
    model_int8_bytes: int  # the whole quantised state, in memory
    fp32_file_bytes: int  # export_safetensors' float32 file
    int8_file_bytes: int  # save_quantized's file
    val_loss_fp32: float
    val_loss_int8: float
    val_batches: int  # the same batches for both (engine.load.reference.validation_loss, a fixed seed)
    prompt: str
    text_fp32: str  # greedy continuations of `prompt`
    text_int8: str
    fp32_path: str | None  # the saved files, when `out_dir` was given
    int8_path: str | None


def compare_quantized(
    run_dir: Path | str, text: str, n_batches: int | None = None, include_embeddings: bool = False,
    out_dir: Path | str | None = None, prompt: str = "\n", n_tokens: int = 60,
) -> QuantReport:
    """Show-me function: quantise the run's model to int8, save both versions as .safetensors (in `out_dir`, or a
    temporary folder that is then removed), and measure both on the same `n_batches` validation batches of `text`
    (the corpus the run trained on; by default the run's own final-evaluation count, so the fp32 number is the
    one its run recorded, up to the stored weights' rounding)."""
    model, tok, config, _ = checkpoint.load_checkpoint(run_dir)
    cfg = TrainConfig.from_dict(config)
    n_batches = n_batches or cfg.final_eval_batches
    qs = quantize_model(model, include_embeddings)
    qmodel = dequantize(qs)
    state = model.state_dict()
    layers = []
    for name, t in qs.int8.items():
        w = state[name].float()  # (out, in)
        layers.append(LayerQuant(
            name=name, shape=tuple(w.shape), fp32_bytes=w.numel() * 4, int8_bytes=t.nbytes,
            max_error=float((w - t.dequantize()).abs().max()), max_half_step=float(t.scale.max() / 2),
            mean_scale=float(t.scale.mean()),
        ))
    data = TextDataset(text, tok)
    loss_fp32 = validation_loss(model, data, cfg, n_batches)
    loss_int8 = validation_loss(qmodel, data, cfg, n_batches)
    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
        folder = Path(out_dir) if out_dir is not None else Path(tmp)
        fp32_path = export_safetensors(run_dir, folder / "model-fp32.safetensors")
        int8_path = save_quantized(qs, tok, folder / "model-int8.safetensors")
        fp32_file, int8_file = fp32_path.stat().st_size, int8_path.stat().st_size
    return QuantReport(
        layers=layers, kept_float=list(qs.floats), linear_fp32_bytes=sum(r.fp32_bytes for r in layers),
        linear_int8_bytes=sum(r.int8_bytes for r in layers),
        model_fp32_bytes=sum(t.numel() * 4 for name, t in state.items() if name not in qs.ties),
        model_int8_bytes=qs.nbytes, fp32_file_bytes=fp32_file, int8_file_bytes=int8_file,
        val_loss_fp32=loss_fp32, val_loss_int8=loss_int8, val_batches=n_batches, prompt=prompt,
        text_fp32=greedy_text(model, tok, prompt, n_tokens), text_int8=greedy_text(qmodel, tok, prompt, n_tokens),
        fp32_path=str(fp32_path) if out_dir is not None else None,
        int8_path=str(int8_path) if out_dir is not None else None,
    )
