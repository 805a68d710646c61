"""Live widgets a lesson card may name, and the parameters each accepts.

This is the validator's side of the widget registry: a card says `widget: {name: ..., params: {...}}`, and
the name must be one of `WIDGET_PARAMS` with params that fit its model. `ui/widgets/__init__.py` maps the same
names to render functions; a test checks that both sides list exactly the same names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class WidgetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_corpus(value: str) -> str:
    """Corpus ids are the names of bundled files in data/ without `.txt` (e.g. `tinyshakespeare`)."""
    if not (DATA_DIR / f"{value}.txt").is_file():
        known = sorted(p.stem for p in DATA_DIR.glob("*.txt"))
        raise ValueError(f"unknown corpus {value!r}; bundled corpora are: {', '.join(known)}")
    return value


class NextCharCountsParams(WidgetParams):
    """'Labels come from the text itself': which characters follow a typed context, counted in real text."""

    corpus: str = "tinyshakespeare"
    context: str = Field("th", min_length=1, max_length=40, description="the context shown first")
    top_k: int = Field(15, ge=3, le=40)
    allow_own_text: bool = True

    _corpus = field_validator("corpus")(_check_corpus)


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

    _corpus = field_validator("corpus")(_check_corpus)

    @model_validator(mode="after")
    def _limits_are_ordered(self) -> TrainRunParams:
        if self.min_learning_rate >= self.max_learning_rate:
            raise ValueError("min_learning_rate must be below max_learning_rate")
        if self.time_budget > self.max_time_budget:
            raise ValueError("time_budget must not exceed max_time_budget")
        return self


WIDGET_PARAMS: dict[str, type[WidgetParams]] = {
    "next_char_counts": NextCharCountsParams,
    "train_run": TrainRunParams,
}

# Numeric quiz answers that come from the learner's own work rather than from the YAML. The UI computes them;
# the validator only checks the name is one of these.
LEARNER_FACTS: dict[str, str] = {
    "run.start_loss": "validation loss at step 0 of the learner's training run",
    "run.final_val_loss": "last validation loss of the learner's training run",
    "run.val_loss_drop": "how much the validation loss fell during the learner's run",
}
