"""A learner's run in FLOPs: its model's shape, what each token cost, and how fast the machine did the arithmetic.

Shared by lesson 9's widgets (the cost meter, the model pricer, the compute-optimal calculator) and the quiz facts,
so every place that says "your run did X FLOP/s" says the same number, from `engine.cost.flops.run_compute` on the
run's latest metrics record.

A run's config holds the model's shape but not its vocabulary size (that comes from the tokenizer). The run does
know its parameter count (`RunSnapshot.params`, the training process's `GPT.num_params()`: every parameter except
the position embeddings), and the token table is the only part that grows with the vocabulary, so the size is
worked out from the count: no file read on a page that polls every two seconds. A run whose count does not fit
(an older folder) falls back to the `model` section of its config.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from engine.cost.flops import RunCompute, count_parameters, run_compute
from engine.load import checkpoint
from engine.runs.snapshot import RunSnapshot
from engine.train.config import TrainConfig
from engine.transform.model import GPTConfig

SECONDS_PER_YEAR = 365.25 * 86400
_file_vocab: dict[str, int] = {}  # run folder -> vocabulary read from its config.json (only found ones are kept)


def vocab_from_params(config: TrainConfig, params: int) -> int | None:
    """The vocabulary size that gives a model of this shape `params` parameters (position embeddings left out, as
    `GPT.num_params` counts them), or None if no whole vocabulary does.

    >>> tiny = TrainConfig(model=GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16))
    >>> vocab_from_params(tiny, 26816)
    65
    >>> vocab_from_params(tiny, 26817) is None
    True
    """
    shape = config.model_config(0)
    without_table = count_parameters(shape).total - shape.block_size * shape.n_embd
    vocab, rest = divmod(params - without_table, shape.n_embd)
    return vocab if rest == 0 and vocab > 0 else None


def vocab_size(run: RunSnapshot) -> int | None:
    """The run's vocabulary size: from its parameter count, else from its config.json; None before it started."""
    if run.params:
        vocab = vocab_from_params(TrainConfig.from_dict(run.config), int(run.params))
        if vocab is not None:
            return vocab
    if run.run_dir not in _file_vocab:
        try:
            saved = json.loads((Path(run.run_dir) / checkpoint.CONFIG).read_text(encoding="utf-8"))
            _file_vocab[run.run_dir] = int(saved["model"]["vocab_size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return _file_vocab[run.run_dir]


def model_config(run: RunSnapshot) -> GPTConfig | None:
    """The GPT the run trains, or None while its vocabulary size is not known yet."""
    vocab = vocab_size(run)
    return None if vocab is None else TrainConfig.from_dict(run.config).model_config(vocab)


def compute(run: RunSnapshot, peak_flops_per_s: float | None = None) -> RunCompute | None:
    """engine.cost.flops.run_compute on the run's latest metrics record; None before its first record.

    >>> snap = RunSnapshot("r", "d", "finished", [{"step": 10, "tokens": 1280, "tokens_per_s": 5000.0,
    ...                    "elapsed_s": 0.5}], config={"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16},
    ...                    params=26816)
    >>> c = compute(snap)
    >>> c.flops_per_token, c.flops, c.achieved_flops_per_s
    (173184, 221675520.0, 865920000.0)
    """
    config = model_config(run) if run.metrics else None
    return None if config is None else run_compute(config, run.metrics[-1], peak_flops_per_s)


def years_at(flops: float, flops_per_s: float) -> float:
    """How many years `flops` take at `flops_per_s` (a year of 365.25 days).

    >>> round(years_at(3.14e23, 1e12), 1)
    9950.1
    """
    return flops / flops_per_s / SECONDS_PER_YEAR


def peak_device(run: RunSnapshot) -> str:
    """The device the run trains on, as engine.cost.peak keys its measurements: "cpu" or "cuda:N".

    >>> peak_device(RunSnapshot("r", "d", "running", config={"device": "cpu"}))
    'cpu'
    >>> peak_device(RunSnapshot("r", "d", "running", config={"device": "cuda"}))
    'cuda:0'
    """
    if run.gpu:
        return run.gpu
    wanted = str(run.config.get("device", "auto"))
    if wanted.startswith("cuda"):
        return wanted if ":" in wanted else "cuda:0"
    if wanted == "auto" and torch.cuda.is_available():
        return "cuda:0"
    return "cpu"  # Apple's GPU (mps) has no probe here: measured as its CPU would be
