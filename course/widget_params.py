"""The parameters each live widget accepts, as pydantic models: the names a card may set and their limits.

A card says `widget: {name: ..., params: {...}}`; `course.widgets.WIDGET_PARAMS` names the model its params must
fit. Unknown parameters are errors, limits keep a card from asking for a run this machine cannot do, and a corpus,
accelerator or published model is named by an id that data/*.yaml (read through manifests.py) defines.
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

import manifests
from course import safe_yaml


class WidgetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@functools.lru_cache(maxsize=1)
def corpus_ids() -> tuple[str, ...]:
    """The corpus ids a lesson may name: those of data/corpora.yaml, read by the same rules as the engine's registry
    (`manifests.CORPORA`). Bundled files and the generated web crawl alike: the widgets that take a `corpus` load
    any of them."""
    return _ids(manifests.CORPORA)


def _ids(manifest: manifests.Manifest) -> tuple[str, ...]:
    """The row ids of one of the project's data manifests, read as safely as a lesson (course.safe_yaml: size,
    encoding, nesting and alias bombs checked first) and by the manifest's own rules; a file that cannot be read or
    breaks a rule is a ValueError naming it (`python -m course.validate` lists all its problems)."""
    shown = f"data/{manifest.name}"
    try:
        data = safe_yaml.parse(safe_yaml.read_text(manifest.path))[0]
    except safe_yaml.YamlRefused as err:
        raise ValueError(f"{shown} cannot be read: {err}") from None
    return tuple(row.id for row in manifest.rows(data, shown))


def _check_corpus(value: str) -> str:
    """A corpus id must be one of data/corpora.yaml (e.g. `tinyshakespeare`), not a file name."""
    if value not in corpus_ids():
        raise ValueError(f"unknown corpus {value!r}; known corpora are: {', '.join(corpus_ids())}")
    return value


class NextCharCountsParams(WidgetParams):
    """'Labels come from the text itself': which characters follow a typed context, counted in real text."""

    corpus: str = "tinyshakespeare"
    context: str = Field("th", min_length=1, max_length=40, description="the context shown first")
    top_k: int = Field(15, ge=3, le=40)
    allow_own_text: bool = True

    _corpus = field_validator("corpus")(_check_corpus)


class PipelineTraceParams(WidgetParams):
    """Lesson 1: one line of text followed through Extract, Transform, Load and Retrieve (engine.pipeline_trace)."""

    corpus: str = "tinyshakespeare"
    line: str = Field("But, soft! what light through yonder window breaks?", min_length=1, max_length=120,
                      description="the line shown first")

    _corpus = field_validator("corpus")(_check_corpus)


class CountingLossParams(WidgetParams):
    """Lesson 2: the loss as surprise, −ln p, and what counting models score on held-out text (engine.transform.baseline)."""

    corpus: str = "tinyshakespeare"
    line: str = Field("To be, or not to be", min_length=2, max_length=80,
                      description="the line whose characters are scored first")

    _corpus = field_validator("corpus")(_check_corpus)


class DescentStepsParams(WidgetParams):
    """Lesson 7: plain gradient descent on a one-weight bowl, the learning rate chosen by the learner."""

    lr: float = Field(0.1, gt=0, le=3, description="the learning rate selected first")
    steps: int = Field(12, ge=3, le=40)


class ChainRuleParams(WidgetParams):
    """Lesson 7: one neuron and its loss as a graph small enough to follow by hand; the learner sets the inputs and
    sees each local gradient, the chain rule's products, and torch's autograd giving the same numbers."""

    x1: float = Field(2.0, ge=-5, le=5)
    w1: float = Field(-0.5, ge=-5, le=5)
    x2: float = Field(1.0, ge=-5, le=5)
    w2: float = Field(1.5, ge=-5, le=5)
    b: float = Field(0.25, ge=-5, le=5)
    target: float = Field(1.0, ge=-1, le=1, description="the value the neuron should output (tanh reaches -1..1)")


class OutputGradientParams(WidgetParams):
    """Lesson 7: the gradient of softmax plus cross-entropy at the output, p − y, on a real prediction of the model,
    and summed over one real batch (why rare tokens drift together, lesson 5)."""

    prompt: str = Field("ROMEO: What light through yonder", min_length=1, max_length=400)
    target: str = Field(" ", min_length=1, max_length=1, description="the character that really comes next")


class TrainRunParams(WidgetParams):
    """A real training run with a few safe knobs. Limits here are what the learner's sliders allow."""

    preset: Literal["tiny", "lesson", "gpu"] = "lesson"
    corpus: str = "tinyshakespeare"
    knobs: list[Literal["n_layer", "n_embd", "learning_rate", "time_budget"]] = Field(
        default_factory=lambda: ["n_layer", "n_embd", "learning_rate", "time_budget"]
    )
    max_layers: int = Field(6, ge=1, le=12)
    max_width: int = Field(256, ge=32, le=1024)
    min_learning_rate: float = Field(1e-4, gt=0)
    max_learning_rate: float = Field(1e-2, gt=0)
    time_budget: int = Field(60, ge=5, le=600, description="default seconds")
    max_time_budget: int = Field(180, ge=5, le=900)
    show_diverge_button: bool = True
    run_key: str = Field("main", pattern=r"^[a-z0-9_-]+$", description="which of the learner's runs this card shows")
    tokenizer: Literal["char", "learner_bpe"] = Field(
        "char", description="learner_bpe: the BPE tokenizer the learner trained in the tokenization lesson")
    use_learner_corpus: bool = Field(False, description="train on the corpus the learner picked in lesson 3")

    _corpus = field_validator("corpus")(_check_corpus)

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> TrainRunParams:
        if self.min_learning_rate >= self.max_learning_rate:
            raise ValueError("min_learning_rate must be below max_learning_rate")
        if self.time_budget > self.max_time_budget:
            raise ValueError("time_budget must not exceed max_time_budget")
        return self


class CorpusPickerParams(WidgetParams):
    """Choose the text the learner works with from here on: a bundled corpus, the web-crawl sample, or their own."""

    allow_upload: bool = True
    allow_paste: bool = True


class CleaningLabParams(WidgetParams):
    """Toggle cleaning steps on the learner's corpus and see what each removed."""

    min_chars: int = Field(50, ge=0, le=5000)
    max_repetition: float = Field(0.3, gt=0, le=1)


class DedupLabParams(WidgetParams):
    """Find exact and near duplicates (MinHash over shingles) at a threshold the learner sets."""

    threshold: float = Field(0.8, ge=0.3, le=1.0)
    min_threshold: float = Field(0.5, ge=0.1, le=1.0)
    max_threshold: float = Field(0.95, ge=0.1, le=1.0)
    max_pairs: int = Field(4, ge=1, le=20, description="example pairs shown side by side")

    @model_validator(mode="after")
    def _threshold_in_range(self) -> DedupLabParams:
        if not self.min_threshold <= self.threshold <= self.max_threshold:
            raise ValueError("threshold must lie between min_threshold and max_threshold")
        return self


class DedupCompareParams(WidgetParams):
    """Two short training runs on the same budget, with and without the duplicates, on one chart."""

    preset: Literal["tiny", "lesson"] = "lesson"
    time_budget: int = Field(20, ge=5, le=120, description="seconds per run")


class DataMixtureParams(WidgetParams):
    """Lesson 3: a training mixture of the bundled corpora (and the learner's own): domain weights, a token budget,
    the epochs each source is repeated, and the reference model's loss on each domain."""

    budget_tokens: int = Field(2_000_000, ge=100_000, le=100_000_000, description="the mixture's token budget first shown")


class TokenizerPlaygroundParams(WidgetParams):
    """Type text and see it as tokens, character-level and BPE side by side."""

    text: str = Field("To be, or not to be: that is the question.", min_length=1, max_length=2000)
    vocab_size: int = Field(1024, ge=260, le=16384, description="BPE vocabulary used until the learner trains one")


class BPETrainerParams(WidgetParams):
    """Train a byte-level BPE on the learner's corpus and step through its first merges."""

    vocab_size: int = Field(1024, ge=260, le=16384)
    min_vocab_size: int = Field(260, ge=257, le=16384)
    max_vocab_size: int = Field(8192, ge=260, le=32768)
    merges_to_trace: int = Field(40, ge=5, le=200)

    @model_validator(mode="after")
    def _vocab_in_range(self) -> BPETrainerParams:
        if not self.min_vocab_size <= self.vocab_size <= self.max_vocab_size:
            raise ValueError("vocab_size must lie between min_vocab_size and max_vocab_size")
        return self


class VocabSweepParams(WidgetParams):
    """Characters per token at several vocabulary sizes, on the learner's corpus."""

    vocab_sizes: list[int] = Field(default_factory=lambda: [512, 1024, 2048, 4096, 8192], min_length=2, max_length=10,
                                   validate_default=True)

    @field_validator("vocab_sizes")
    @classmethod
    def _sizes_ok(cls, sizes: list[int]) -> list[int]:
        if any(v < 257 or v > 32768 for v in sizes):
            raise ValueError("each vocabulary size must be between 257 and 32768")
        if sorted(set(sizes)) != sizes:
            raise ValueError("vocabulary sizes must be increasing and distinct")
        return sizes


class AttentionHeatmapParams(WidgetParams):
    """One head's attention weights over a prompt the learner types, as a heatmap (layer and head chosen on screen)."""

    prompt: str = Field("ROMEO: What light through yonder", min_length=1, max_length=400)
    layer: int = Field(1, ge=1, le=12, description="layer shown first, counting from 1")
    head: int = Field(1, ge=1, le=16, description="head shown first, counting from 1")


class ParameterBreakdownParams(WidgetParams):
    """The model's parameters by part (embeddings, attention, MLP, norms, the tied output head), with the total."""

    show_table: bool = True


class ForwardPassParams(WidgetParams):
    """A prompt through the model stage by stage with real tensor shapes, the likeliest next tokens, the logit lens."""

    prompt: str = Field("ROMEO: What light through yonder", min_length=1, max_length=400)


class AttentionArithmeticParams(WidgetParams):
    """One head's attention for one position of a short prompt, worked with its numbers: q·k, ÷√d, softmax, the
    weighted sum of the values, checked against the model's own attention."""

    prompt: str = Field("ROMEO:", min_length=1, max_length=40)
    layer: int = Field(1, ge=1, le=12, description="layer shown first, counting from 1")
    head: int = Field(1, ge=1, le=16, description="head shown first, counting from 1")


class MlpBendParams(WidgetParams):
    """A block's real MLP with and without its non-linearity (GELU), on two positions of a prompt."""

    prompt: str = Field("ROMEO: What light", min_length=2, max_length=64)
    layer: int = Field(1, ge=1, le=12, description="layer shown first, counting from 1")


class EmbeddingMapParams(WidgetParams):
    """The shown model's token-embedding table as a 2-D (or 3-D) PCA map, at each step of its training timeline."""

    start_at: Literal["first", "last"] = Field("first", description="the timeline step the slider starts on")
    allow_3d: bool = True


class EmbeddingNeighboursParams(WidgetParams):
    """A token's nearest neighbours by cosine similarity, at step 0 and at a chosen timeline step."""

    token: str = Field("e", min_length=1, max_length=40, description="the token shown first, if the vocabulary has it")
    k: int = Field(6, ge=3, le=15, description="neighbours listed")


class EmbeddingTableSizeParams(WidgetParams):
    """The embedding table's size from the shown model's own config, and for a vocabulary size the learner types."""

    what_if: bool = True
    what_if_vocab: int = Field(1024, ge=2, le=262_144)


class NextTokenProbsParams(WidgetParams):
    """The model's next-token probabilities for a typed prompt, raw beside temperature / top-k / top-p, and
    generation one token at a time (the model samples, or the learner picks)."""

    prompt: str = Field("To be, or not to be, th", min_length=1, max_length=400)
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="the slider's first value")
    top_k: int = Field(0, ge=0, le=100, description="0 = off")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="1.0 = off")
    show: int = Field(10, ge=3, le=20, description="candidates shown in the chart")
    seed: int = Field(0, ge=0, le=10_000)


class ModelVsCountsParams(WidgetParams):
    """For a short context, a character model's next-character probabilities beside the real next-character
    shares in the text it was trained on (engine.transform.next_token.following_counts)."""

    context: str = Field("th", min_length=1, max_length=20)
    corpus: str = Field("tinyshakespeare", description="the text the counts come from (the reference model's)")
    show: int = Field(10, ge=3, le=20)

    _corpus = field_validator("corpus")(_check_corpus)


class InferenceCostParams(WidgetParams):
    """Lesson 8: generating text as a server does: the prompt's prefill, then decode one token at a time, timed with
    and without the KV cache on the learner's model; FLOPs and bytes per token, and what they mean for serving."""

    prompt: str = Field("ROMEO:", min_length=1, max_length=400)
    new_tokens: int = Field(200, ge=20, le=500, description="tokens generated in each timing")


class ModelEvalParams(WidgetParams):
    """Lesson 8: evaluation beyond the loss: bits per byte across tokenizers, a multiple-choice benchmark scored by
    log-likelihood from held-out text, and its contamination found with lesson 3's duplicate finder."""

    questions: int = Field(40, ge=10, le=200, description="benchmark questions built from held-out text")


class TimelineSamplesParams(WidgetParams):
    """The sample the shown run wrote at each snapshot of its timeline, with step and validation loss."""

    columns: int = Field(2, ge=1, le=3)


class OverfitRunParams(WidgetParams):
    """A training run on a small slice of a corpus, long enough for validation loss to turn up (memorising)."""

    preset: Literal["tiny", "lesson"] = Field("lesson", description="tiny: a few seconds, for tests")
    corpus: str = "tinyshakespeare"
    slice_chars: int = Field(10_000, ge=2_000, le=100_000, description="the first this many characters")
    time_budget: int = Field(40, ge=10, le=180)
    eval_interval: int = Field(25, ge=5, le=200)
    early_stop_patience: int = Field(4, ge=1, le=20, description="evaluations without improvement before the "
                                     "engine's early-stopping rule ends the run (when the learner switches it on)")
    run_key: str = Field("overfit", pattern=r"^[a-z0-9_-]+$")

    _corpus = field_validator("corpus")(_check_corpus)
