"""The parameters of the widgets that name catalogue rows and saved runs: lesson 7's checkpoint file, lesson 9's cost,
memory and scaling widgets, lesson 10's loading, retrieval and fine-tuning. The rest, and the rules they share
(`WidgetParams`, corpus ids), are in course.widget_params; course.widgets lists them all.
"""

from __future__ import annotations

import functools

from pydantic import Field, field_validator, model_validator

import manifests
from course.widget_params import WidgetParams, _check_corpus, _ids


@functools.lru_cache(maxsize=2)
def catalogue_ids(filename: str) -> tuple[str, ...]:
    """Row ids of a catalogue under data/ (accelerators.yaml, published_models.yaml), read like `corpus_ids`."""
    return _ids(manifests.MANIFESTS[filename])


def _check_accelerator(value: str) -> str:
    if value not in catalogue_ids("accelerators.yaml"):
        raise ValueError(f"unknown accelerator {value!r}; known: {', '.join(catalogue_ids('accelerators.yaml'))}")
    return value


def _check_published_model(value: str) -> str:
    if value not in catalogue_ids("published_models.yaml"):
        raise ValueError(f"unknown model {value!r}; known: {', '.join(catalogue_ids('published_models.yaml'))}")
    return value


class CheckpointFileParams(WidgetParams):
    """Lesson 7: the file the learner's run saved (ckpt.pt), taken apart: weights, optimizer state, the record."""

    run_key: str = Field("main", pattern=r"^[a-z0-9_-]+$")


class CostMeterParams(WidgetParams):
    """Lesson 9: the learner's lesson-7 run (live or ended) with its FLOPs so far, achieved FLOP/s, utilisation
    against this machine's measured peak, and what the same run would cost and take on each catalogue chip."""

    run_key: str = Field("main", pattern=r"^[a-z0-9_-]+$", description="which of the learner's runs to meter")
    utilisation: float = Field(0.4, gt=0, le=1, description="the utilisation assumed for the catalogue chips")


class ModelPriceParams(WidgetParams):
    """Lesson 9: price a published model's training (data/published_models.yaml) on a catalogue accelerator."""

    model: str = "gpt3_175b"
    accelerator: str = "a100_40gb"
    count: int = Field(1024, ge=1, le=100_000, description="chips training together")
    utilisation: float = Field(0.4, gt=0, le=1)
    grid_g_per_kwh: float = Field(400.0, ge=0, le=1500, description="the grid's carbon intensity, g CO2 per kWh")

    _model = field_validator("model")(_check_published_model)
    _accelerator = field_validator("accelerator")(_check_accelerator)


class TrainingMemoryParams(WidgetParams):
    """Lesson 9: the memory a training run holds per parameter (weights, gradients, Adam's two moments, float32
    master weights under mixed precision) plus activations, for the learner's model and a published one; bf16 against
    fp16 on real numbers of the learner's run."""

    model: str = "llama3_8b"

    _model = field_validator("model")(_check_published_model)


class GradAccumulationParams(WidgetParams):
    """Lesson 9: one real batch's gradient in one pass against the same batch accumulated over micro-batches."""

    batch: int = Field(32, ge=8, le=64, description="sequences per optimizer step")
    micro: int = Field(8, ge=1, le=64, description="sequences per backward pass shown first")

    @model_validator(mode="after")
    def _divides(self) -> GradAccumulationParams:
        if self.batch % self.micro:
            raise ValueError("micro must divide batch")
        return self


class ComputeOptimalParams(WidgetParams):
    """Lesson 9: split a compute budget into parameters and tokens (Chinchilla, ~20 tokens per parameter)."""

    flops: float = Field(1e21, gt=0, description="the budget the calculator opens with, in FLOPs")
    tokens_per_parameter: float = Field(20.0, gt=0, le=10_000)


class ScalingSweepParams(WidgetParams):
    """Lesson 9: a ladder of model sizes trained on the same data and token budget, a power law fitted to their
    losses against compute, and the next size up trained to check the prediction."""

    corpus: str = "tinyshakespeare"
    run_key: str = Field("sweep", pattern=r"^[a-z0-9_-]+$", description="prefix of the rungs' run keys")

    _corpus = field_validator("corpus")(_check_corpus)


class ReportCardParams(WidgetParams):
    """Lesson 9: one page for a run (config, device, curves, samples, tokens, FLOPs, cost elsewhere), downloadable
    as Markdown or HTML, and set beside another of the learner's runs."""

    run_key: str = Field("main", pattern=r"^[a-z0-9_-]+$", description="the run the card opens with")
    compare: bool = True


class CheckpointAnatomyParams(WidgetParams):
    """Lesson 10: the learner's checkpoint (or the reference model's) taken apart, its size predicted at fp32, bf16,
    int8 and 4-bit against the real file, the safetensors round trip, and int8 quantisation done for real."""

    run_key: str = Field("main", pattern=r"^[a-z0-9_-]+$", description="the learner's run to open, if they have it")


class RagPlaygroundParams(WidgetParams):
    """Lesson 10: ask a question of a document collection (the course's own lesson text, bundled corpora, the
    learner's uploads) and see what semantic and keyword retrieval return, with scores, and the prompt they make."""

    corpora: list[str] = Field(default_factory=lambda: ["python_stdlib"], max_length=3,
                               description="bundled corpora searched beside the lesson text")
    include_lessons: bool = True
    include_uploads: bool = True
    question: str = Field("Why does a model's loss start near ln of the vocabulary size?", min_length=1,
                          max_length=300)
    chunk_size: int = Field(600, ge=100, le=4000, description="characters per chunk")
    overlap: int = Field(100, ge=0, le=2000, description="characters shared by neighbouring chunks")
    k: int = Field(5, ge=1, le=20)

    @field_validator("corpora")
    @classmethod
    def _known_corpora(cls, values: list[str]) -> list[str]:
        return [_check_corpus(v) for v in values]

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RagPlaygroundParams:
        if self.overlap >= self.chunk_size:
            raise ValueError("overlap must be smaller than chunk_size")
        return self


class FinetuneRunParams(WidgetParams):
    """Lesson 10: continue the learner's lesson-7 model (or the reference model) on another corpus, a queued run
    like any other, with the loss on both corpora and samples before and after."""

    corpus: str = Field("python_stdlib", description="the new text the model is fine-tuned on")
    time_budget: int = Field(30, ge=5, le=300, description="seconds")
    run_key: str = Field("finetune", pattern=r"^[a-z0-9_-]+$")
    source_run_key: str = Field("main", pattern=r"^[a-z0-9_-]+$", description="the learner's run to start from")

    _corpus = field_validator("corpus")(_check_corpus)
