"""Splitting a model's training over N GPUs (lesson 9): what each GPU holds, and what the GPUs send each other.

Six schemes, each with N GPUs, from the same per-parameter accounting as engine/cost/memory.py (mixed precision
with Adam: 2 bytes of 16-bit weights, 2 of 16-bit gradients, 4 of float32 master weights and 8 of Adam's two moments):

- **DDP** (plain data parallelism): every GPU holds everything; the gradients are averaged by an all-reduce.
- **ZeRO-1, ZeRO-2, ZeRO-3** (Rajbhandari et al. 2020; ZeRO-3 is what PyTorch calls FSDP, Zhao et al. 2023): still
  data parallelism, but each GPU keeps only a 1/N share of the optimizer state (ZeRO-1), and of the gradients too
  (ZeRO-2), and of the weights too (ZeRO-3), fetching the rest from the others when it needs them. The master
  weights count as optimizer state, as in the paper: only the optimizer reads them.
- **Tensor parallelism** of degree N (Shoeybi et al. 2019, Megatron-LM): each weight matrix is cut into N slices, one
  per GPU, and every layer's output is put back together by all-reduces of activations inside the layer.
- **Pipeline parallelism** of N stages (Huang et al. 2019, GPipe): each GPU holds a run of consecutive layers and
  passes activations to the next; with m micro-batches each GPU idles (N - 1) / (m + N - 1) of the step: the bubble.

Bytes sent are those of ring collectives (Patarasuk and Yuan 2009): an all-reduce of M bytes makes every GPU send
2(N - 1)/N · M, a reduce-scatter or an all-gather (N - 1)/N · M. Only the training state is counted: activations
come on top and depend on the batch, the context and the width, which a parameter count does not say. Tensor
parallelism also copies the small norm vectors to every GPU, and a pipeline's first and last stages hold the
embedding tables: both are left out here, where every parameter is taken to sit in equal layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.cost.catalogue import model as published_model
from engine.cost.memory import MemoryBreakdown, training_memory

KINDS = ("weights", "gradients", "optimizer")  # what ZeRO shards, in the order it shards them: optimizer first
ZERO_SHARDS = {"ddp": (), "zero1": ("optimizer",), "zero2": ("optimizer", "gradients"),
               "zero3": ("optimizer", "gradients", "weights")}
NAMES = {"ddp": "Data parallel (DDP)", "zero1": "ZeRO-1", "zero2": "ZeRO-2", "zero3": "ZeRO-3 / FSDP",
         "tensor": "Tensor parallel", "pipeline": "Pipeline parallel"}


def kind(part: str) -> str:
    """Which of weights, gradients or optimizer state a part of engine.cost.memory's breakdown is. The float32 master
    weights are optimizer state (ZeRO's accounting: only the optimizer step reads them).

    >>> [kind(p) for p in ("weights (16-bit)", "gradients (16-bit)", "master weights (float32)", "Muon momentum")]
    ['weights', 'gradients', 'optimizer', 'optimizer']
    """
    return "weights" if part.startswith("weights") else "gradients" if part.startswith("gradients") else "optimizer"


def shares(n: int, k: int) -> list[int]:
    """n things split into k shares as even as whole numbers allow (the first n mod k shares get one more).

    >>> shares(10, 4), shares(3, 4)
    ([3, 3, 2, 2], [1, 1, 1, 0])
    """
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def stage_parameters(n: int, layers: int, stages: int) -> list[int]:
    """The parameters of each pipeline stage when `layers` equal layers holding n parameters are cut into `stages`
    runs of consecutive layers (as even as whole layers allow): the stages with a layer more hold more.

    >>> stage_parameters(1200, 12, 4), stage_parameters(1000, 10, 4)
    ([300, 300, 300, 300], [300, 300, 200, 200])
    """
    ends, start = [], 0
    for count in shares(layers, stages):
        start += count
        ends.append(n * start // layers)  # parameters in the layers before this stage's end
    return [b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)]


@dataclass(frozen=True)
class GpuState:
    """What one GPU holds: bytes of each part of the training state, by engine.cost.memory's part names."""

    parts: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def of_kind(self, k: str) -> float:
        """Bytes of one kind (weights, gradients or optimizer state) on this GPU."""
        return sum(b for name, b in self.parts.items() if kind(name) == k)


@dataclass(frozen=True)
class Scheme:
    """One way of splitting the training over the GPUs: what each GPU holds, and what travels between them."""

    id: str  # ddp, zero1, zero2, zero3, tensor, pipeline
    name: str
    gpus: list[GpuState]  # one per GPU
    split: tuple[str, ...]  # the kinds cut into shares; the rest is a full copy on every GPU
    sends: str  # what has to travel between GPUs per step, in words
    sent_bytes: float | None  # bytes each GPU sends per step (None: activations, which the count does not fix)

    @property
    def largest(self) -> GpuState:
        """The GPU that holds the most: the one that decides whether the scheme fits."""
        return max(self.gpus, key=lambda g: g.total)


@dataclass(frozen=True)
class ParallelismMap:
    """A model's training state split over `gpus` GPUs in each scheme, beside the unsplit state."""

    parameters: int
    layers: int | None  # None: not known (the catalogue does not record it); pipeline stages taken as equal
    gpus: int
    micro_batches: int
    state: MemoryBreakdown  # the whole training state, as one GPU would hold it
    schemes: list[Scheme]
    bubble: float  # the share of a pipeline step each GPU idles: (N - 1) / (m + N - 1)

    def scheme(self, scheme_id: str) -> Scheme:
        return next(s for s in self.schemes if s.id == scheme_id)


def bubble(stages: int, micro_batches: int) -> float:
    """The share of a pipeline step each stage idles (GPipe's bubble, Huang et al. 2019): the last stage waits
    N - 1 micro-batch slots for its first input, the first stage N - 1 slots for its last gradient, and each is busy
    for m of the m + N - 1 slots of the forward pass, and again of the backward pass.

    >>> bubble(4, 1), bubble(4, 12), bubble(1, 8)
    (0.75, 0.2, 0.0)
    """
    return (stages - 1) / (micro_batches + stages - 1)


def _gpus(state: MemoryBreakdown, counts: dict[str, list[int]]) -> list[GpuState]:
    """Per GPU, each part's bytes for the parameters whose share of that kind (weights, gradients, optimizer) it
    holds: counts[kind][i] parameters on GPU i."""
    k = len(next(iter(counts.values())))
    return [GpuState({p.name: p.per_param * counts[kind(p.name)][i] for p in state.parts if p.per_param is not None})
            for i in range(k)]


def _sent(state: MemoryBreakdown, gpus: int, scheme_id: str) -> float:
    """Bytes each GPU sends per step in a ring: DDP all-reduces the gradients (2 passes over them); ZeRO-1 and 2
    reduce-scatter them and all-gather the updated weights (the same 2 passes); ZeRO-3 all-gathers the weights twice,
    for the forward and for the backward pass, and reduce-scatters the gradients (3 passes)."""
    w = sum(p.bytes for p in state.parts if kind(p.name) == "weights")
    g = sum(p.bytes for p in state.parts if kind(p.name) == "gradients")
    ring = (gpus - 1) / gpus
    return ring * {"ddp": 2 * g, "zero1": g + w, "zero2": g + w, "zero3": g + 2 * w}[scheme_id]


SENDS = {
    "ddp": "all-reduce of the gradients: every GPU ends the step with the same averaged gradient, and all of them "
           "take the same optimizer step",
    "zero1": "reduce-scatter of the gradients (each GPU gets the averaged share its optimizer state updates), then "
             "all-gather of the updated weights",
    "zero2": "the same as ZeRO-1: reduce-scatter of the gradients, all-gather of the updated weights; each GPU keeps "
             "only its share of the gradients",
    "zero3": "all-gather of each layer's weights just before the forward pass uses it and again for the backward "
             "pass (then the copies are dropped), and reduce-scatter of the gradients: half as much again as DDP",
    "tensor": "all-reduces of activations inside every layer, twice in the forward pass and twice in the backward "
              "pass, for every micro-batch: so much talk that tensor parallelism usually stays inside one machine's "
              "fast links (8 GPUs); no gradient all-reduce, as each GPU updates only its own slices",
    "pipeline": "activations from one stage to the next in the forward pass, and their gradients back in the "
                "backward pass, one micro-batch at a time, only between neighbours; the price is the bubble, the "
                "time stages wait at the start and the end of every step",
}


def parallelism_map(params: dict[str, int], gpus: int, layers: int | None = None, precision: str = "mixed",
                    micro_batches: int = 8, adamw_tensors: int = 0) -> ParallelismMap:
    """Show-me function: what each of `gpus` GPUs holds when the training of a model (`params`: optimizer name ->
    parameters it updates, as engine.cost.memory.training_memory takes it) is split by data parallelism, ZeRO-1/2/3
    (FSDP), tensor parallelism of degree N or a pipeline of N stages, and what the GPUs send each other per step.

    Why: one GPU's memory, not its speed, is what first stops a big model training. Data parallelism alone copies
    the whole 16 bytes per parameter to every GPU, so adding GPUs never makes a model fit; sharding the state
    (ZeRO), the matrices (tensor) or the layers (pipeline) divides it by N, and each pays in traffic or idle time.

    >>> m = parallelism_map({"adamw": 7_500_000_000}, 64)  # the ZeRO paper's Figure 1: 7.5B parameters, 64 GPUs
    >>> [round(s.largest.total / 1e9, 1) for s in m.schemes]
    [120.0, 31.4, 16.6, 1.9, 1.9, 1.9]
    """
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ValueError(f"the GPU count must be a whole number, 1 or more, not {gpus!r}")
    if isinstance(micro_batches, bool) or not isinstance(micro_batches, int) or micro_batches < 1:
        raise ValueError(f"the micro-batch count must be a whole number, 1 or more, not {micro_batches!r}")
    n = sum(params.values())
    if n < 1:
        raise ValueError("the model has no parameters to split")
    if layers is not None and (layers < 1 or gpus > layers):
        raise ValueError(f"a pipeline of {gpus} stages needs at least {gpus} layers, one per GPU; "
                         f"this model has {layers}")
    state = training_memory(params, precision, adamw_tensors=adamw_tensors)  # (one GPU's whole state)
    full, split = [n] * gpus, shares(n, gpus)
    schemes = []
    for sid, sharded in ZERO_SHARDS.items():
        counts = {k: split if k in sharded else full for k in KINDS}
        schemes.append(Scheme(sid, NAMES[sid], _gpus(state, counts), sharded, SENDS[sid], _sent(state, gpus, sid)))
    schemes.append(Scheme("tensor", NAMES["tensor"], _gpus(state, dict.fromkeys(KINDS, split)), KINDS,
                          SENDS["tensor"], None))
    stages = split if layers is None else stage_parameters(n, layers, gpus)
    schemes.append(Scheme("pipeline", NAMES["pipeline"], _gpus(state, dict.fromkeys(KINDS, stages)), KINDS,
                          SENDS["pipeline"], None))
    return ParallelismMap(n, layers, gpus, micro_batches, state, schemes, bubble(gpus, micro_batches))


def published_parallelism(model_id: str, gpus: int, micro_batches: int = 8) -> ParallelismMap:
    """Show-me function: a catalogue model (data/published_models.yaml) trained with Adam in mixed precision over
    `gpus` GPUs, each scheme. The catalogue records no layer counts, so the pipeline's stages are taken as equal.

    >>> m = published_parallelism("llama3_8b", 8)
    >>> m.state.state_bytes / 1e9, m.scheme("ddp").largest.total / 1e9, m.scheme("zero3").largest.total / 1e9
    (128.0, 128.0, 16.0)
    """
    return parallelism_map({"adamw": int(published_model(model_id).parameters)}, gpus, micro_batches=micro_batches)
