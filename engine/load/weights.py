"""The "Load" stage, opened up: what a checkpoint file holds, what it should weigh, and the same weights exported as
`safetensors`, the format models are shared in, then loaded back and run.

"A 0.6M-parameter model" should mean "about 2.4 MB in float32": parameters x bytes per parameter (4 for fp32, 2 for
bf16, 1 for int8, half a byte at 4 bits), arithmetic a learner can check against a file they made. A real ckpt.pt
weighs more, and `anatomy` says where the rest goes: the optimizer state (there only to resume), the metrics,
tokenizer, configs and RNG state pickled beside the weights, and `torch.save`'s zip container. The tied token
embedding and output head (Press & Wolf 2017) are one storage under two names, stored and counted once.
`export_safetensors` writes Hugging Face's safetensors (a JSON header, then raw tensor bytes: loading it cannot run
code, unlike a pickle), one name per shared storage, the model config and tokenizer as metadata; `round_trip`
rebuilds a GPT from that file alone, tied again, and checks it writes the same text. docs/architecture.md
("Checkpoints, safetensors and int8") has the details.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model

from engine.files import write_atomically
from engine.load import checkpoint
from engine.look_inside.sampling import generate_steps, last_logits
from engine.runs.run_owner import check_owner
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import Tokenizer, tokenizer_from_dict

# Bytes one parameter takes in each format a model is commonly stored or served in (scales and other per-block
# extras of the integer formats left out: engine/load/quantize.py measures them for int8).
BYTES_PER_PARAM: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "int8": 1.0, "4-bit": 0.5}

# What each entry of a run's ckpt.pt is for (engine.train.job.save_run writes them); anything else is shown by its key.
PART_MEANING: dict[str, str] = {
    "model": "the weights: with the tokenizer and the model's shape, what running the model needs",
    "optimizers": "the optimizer's state (AdamW's two moments per parameter, Muon's momentum): only to resume",
    "metrics": "one record per training step, samples included",
    "tokenizer": "the tokenizer: text <-> token ids (needed to run the model)",
    "model_config": "the model's shape: layers, heads, width, context (needed to run it)",
    "train_config": "the training settings",
    "rng": "the random generator's state: only to resume",
    "step": "the step reached",
    "elapsed_s": "the seconds trained",
    "tokens": "the tokens trained on",
    "weights_dtype": "the dtype the weights were stored in",
}

FORMAT = "llm-course-gpt"  # the metadata tag that says a .safetensors file was written by export_safetensors


def predicted_bytes(parameters: int, fmt: str) -> int:
    """The weights' size in `fmt` (one of BYTES_PER_PARAM): parameters x bytes per parameter.

    >>> predicted_bytes(600_000, "fp32"), predicted_bytes(600_000, "4-bit")
    (2400000, 300000)
    """
    if fmt not in BYTES_PER_PARAM:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(BYTES_PER_PARAM)}")
    return round(parameters * BYTES_PER_PARAM[fmt])


@dataclass(frozen=True)
class TensorRow:
    """One tensor of the model's state dict."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # as stored in the file ("float32", "float16", ...)
    parameters: int
    bytes: int  # parameters x the stored dtype's size
    tied_to: str | None  # the name it shares its storage with, when it is a second name for the same matrix


@dataclass(frozen=True)
class PartRow:
    """One top-level entry of ckpt.pt and what it adds to the file."""

    key: str
    meaning: str
    # what this entry adds to a file that holds nothing else (torch.save measured, in memory); a small value
    # (a step count) can add 0, its few pickled bytes absorbed by the zip's 64-byte alignment padding
    bytes: int
    tensor_bytes: int  # of which tensor data (each storage once)


@dataclass(frozen=True)
class SizePrediction:
    """The weights' size predicted for one storage format."""

    format: str  # "fp32", "bf16", "int8", "4-bit"
    bytes_per_param: float
    bytes: int


@dataclass(frozen=True)
class CheckpointAnatomy:
    """Show-me data: what a run's ckpt.pt holds, what the weights should weigh, and what the file does weigh."""

    path: str
    file_bytes: int  # the real file on disk
    tensors: list[TensorRow]  # the model's state dict, in order
    parts: list[PartRow]  # every top-level entry, the model first, largest first after it
    parameters: int  # unique parameters (the tied matrix once)
    weights_dtype: str  # the dtype the weights are stored in
    weights_bytes: int  # the model's tensor data as stored (each storage once)
    predictions: list[SizePrediction]  # fp32, bf16, int8, 4-bit
    tensor_data_bytes: int  # every tensor storage in the file (weights, optimizer, RNG): the zip's data records
    pickle_bytes: int  # data.pkl: the structure and every plain Python object (metrics, tokenizer, configs)
    container_bytes: int  # the rest: zip headers, 64-byte alignment padding, small records


def _storages(value: Any) -> dict[tuple[int, int], int]:
    """Every distinct tensor storage inside `value` (nested dicts, lists, tuples): (pointer, size) -> bytes."""
    found: dict[tuple[int, int], int] = {}
    if isinstance(value, torch.Tensor):
        s = value.untyped_storage()
        found[(s.data_ptr(), s.nbytes())] = s.nbytes()
    elif isinstance(value, dict):
        for v in value.values():
            found.update(_storages(v))
    elif isinstance(value, list | tuple):
        for v in value:
            found.update(_storages(v))
    return found


def _saved_bytes(value: Any) -> int:
    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.tell()


def tensor_rows(state: dict[str, torch.Tensor]) -> list[TensorRow]:
    """One row per state-dict entry; a name whose storage an earlier name already holds is marked `tied_to` it.

    >>> from engine.transform.model import GPT, GPTConfig
    >>> rows = tensor_rows(GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)).state_dict())
    >>> [(r.name, r.shape, r.tied_to) for r in rows if r.name.endswith(("wte.weight", "lm_head.weight"))]
    [('transformer.wte.weight', (5, 4), None), ('lm_head.weight', (5, 4), 'transformer.wte.weight')]
    """
    owner: dict[tuple[int, int], str] = {}
    rows = []
    for name, t in state.items():
        s = t.untyped_storage()
        key = (s.data_ptr(), s.nbytes())
        tied = owner.get(key)
        owner.setdefault(key, name)
        rows.append(TensorRow(name=name, shape=tuple(t.shape), dtype=str(t.dtype).removeprefix("torch."),
                              parameters=t.numel(), bytes=t.numel() * t.element_size(), tied_to=tied))
    return rows


def _zip_split(path: Path) -> tuple[int, int]:
    """(bytes of tensor data records, bytes of data.pkl) in a torch.save zip archive."""
    data = pickle = 0
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            parts = info.filename.split("/")
            if len(parts) >= 3 and parts[-2] == "data" and parts[-1].isdigit():
                data += info.file_size  # one record per tensor storage, stored uncompressed
            elif parts[-1] == "data.pkl":
                pickle += info.file_size
    return data, pickle


def anatomy(run_dir: Path | str) -> CheckpointAnatomy:
    """Show-me function: a run's ckpt.pt taken apart. Its model tensors row by row, every other entry with the
    bytes it adds, the real file size split into tensor data, pickle and zip container, and the weights' size
    predicted at fp32, bf16, int8 and 4-bit (parameters x bytes per parameter) to set against it."""
    path = Path(run_dir) / checkpoint.CKPT
    ckpt = checkpoint.read_checkpoint(run_dir)
    rows = tensor_rows(ckpt["model"])
    stored = [r for r in rows if r.tied_to is None]
    parameters = sum(r.parameters for r in stored)
    empty = _saved_bytes({})
    parts = [PartRow(key=key, meaning=PART_MEANING.get(key, key), bytes=_saved_bytes({key: value}) - empty,
                     tensor_bytes=sum(_storages(value).values())) for key, value in ckpt.items()]
    parts.sort(key=lambda p: (p.key != "model", -p.bytes))
    file_bytes = path.stat().st_size
    data_bytes, pickle_bytes = _zip_split(path)
    dtypes = sorted({r.dtype for r in stored})
    return CheckpointAnatomy(
        path=str(path), file_bytes=file_bytes, tensors=rows, parts=parts, parameters=parameters,
        weights_dtype="/".join(dtypes), weights_bytes=sum(r.bytes for r in stored),
        predictions=[SizePrediction(f, b, predicted_bytes(parameters, f)) for f, b in BYTES_PER_PARAM.items()],
        tensor_data_bytes=data_bytes, pickle_bytes=pickle_bytes,
        container_bytes=file_bytes - data_bytes - pickle_bytes,
    )


# ---- safetensors: export, load back, generate ------------------------------------------------------------


def export_safetensors(run_dir: Path | str, out_path: Path | str, dtype: torch.dtype = torch.float32,
                       owner: str | None = None) -> Path:
    """Write the run's model as a .safetensors file: the weights (in `dtype`; the tied embedding/head once) and,
    as metadata strings, the model config, the tokenizer, the step and the source, so the file alone rebuilds
    the model (`load_safetensors`). Written atomically. Returns the path.

    `owner`: the learner asking; PermissionError if the run folder names another (engine.runs.run_owner). None for
    a script or an instructor's page, which check who asks themselves.

    In float32 the round trip is exact: every weight comes back bit for bit."""
    if owner is not None:
        check_owner(run_dir, owner, "download its weights")
    ckpt = checkpoint.read_checkpoint(run_dir)
    model = GPT(GPTConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])  # copies into the (tied) float32 parameters, whatever was stored
    model.to(dtype)
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(ckpt["model_config"]),
        "tokenizer": json.dumps(ckpt["tokenizer"]),
        "step": json.dumps(ckpt.get("step")),
        "source": f"{Path(run_dir).name}/{checkpoint.CKPT}",
    }
    # save_model drops lm_head's alias (the tied matrix is stored once), noting it in the metadata
    return write_atomically(out_path, lambda tmp: save_model(model, str(tmp), metadata=metadata))


def read_metadata(path: Path | str) -> dict[str, str]:
    """The string metadata of a .safetensors file (its JSON header only: no tensor is read)."""
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_safetensors(path: Path | str, device: str | torch.device = "cpu") -> tuple[GPT, Tokenizer]:
    """A float32 GPT (eval mode) and its tokenizer from a file `export_safetensors` wrote. The fresh GPT ties its
    embedding to its head by construction; `load_model` fills the stored name and checks no weight is missing
    or left over. Raises ValueError for a .safetensors file that did not come from `export_safetensors`."""
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} holds no model config and tokenizer (not written by export_safetensors)")
    model = GPT(GPTConfig.from_dict(json.loads(meta["model_config"])))
    load_model(model, str(path), strict=True)
    model.to(device)
    model.eval()
    return model, tokenizer_from_dict(json.loads(meta["tokenizer"]))


def greedy_text(model: GPT, tokenizer: Tokenizer, prompt: str, n_tokens: int) -> str:
    """The prompt and the `n_tokens` the model finds likeliest, one by one (temperature 0: no randomness)."""
    steps = generate_steps(model, tokenizer, prompt, n_tokens, temperature=0.0)
    return prompt + tokenizer.decode([s.id for s in steps])


@dataclass(frozen=True)
class RoundTrip:
    """Show-me data: a run exported to safetensors, loaded back from that file alone, and run."""

    path: str
    file_bytes: int
    ckpt_bytes: int  # the run's ckpt.pt, for comparison
    parameters: int
    stored_names: list[str]  # the tensor names in the file (the tied matrix under one name)
    prompt: str
    original_text: str  # greedy continuation from the checkpoint's model
    loaded_text: str  # the same from the model loaded from the .safetensors file
    max_logit_difference: float  # over the prompt's next-token logits: 0.0 when the round trip is exact
    identical: bool  # same text and same logits


def round_trip(run_dir: Path | str, out_path: Path | str, prompt: str = "\n", n_tokens: int = 60,
               owner: str | None = None) -> RoundTrip:
    """Show-me function: export the run's model to `out_path`, load it back from that file alone, and generate
    greedily from both with the same prompt. `owner` as for `export_safetensors`."""
    out_path = export_safetensors(run_dir, out_path, owner=owner)
    original, tok, _, _ = checkpoint.load_checkpoint(run_dir)
    loaded, loaded_tok = load_safetensors(out_path)
    ids = tok.encode(prompt)[-original.config.block_size:]
    diff = float((last_logits(original, ids) - last_logits(loaded, ids)).abs().max())
    a, b = greedy_text(original, tok, prompt, n_tokens), greedy_text(loaded, loaded_tok, prompt, n_tokens)
    with safe_open(str(out_path), framework="pt") as f:
        names = sorted(f.keys())
    return RoundTrip(
        path=str(out_path), file_bytes=out_path.stat().st_size,
        ckpt_bytes=(Path(run_dir) / checkpoint.CKPT).stat().st_size, parameters=original.num_params(False),
        stored_names=names, prompt=prompt, original_text=a, loaded_text=b, max_logit_difference=diff,
        identical=a == b and diff == 0.0,
    )
