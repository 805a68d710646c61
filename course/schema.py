"""Pydantic models for lesson and quiz files, with the teaching rules a content author must follow.

A lesson is an ordered list of cards (a title, a Markdown body, and optionally one live widget). A quiz is a list
of questions of six kinds; every kind carries explanations so a wrong answer still teaches. Unknown fields are
errors, so a typo in a key is caught instead of silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from course.learner_facts import LEARNER_FACTS
from course.widgets import WIDGET_PARAMS

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=60)]
Text = Annotated[str, Field(min_length=1)]
BLANK = "___"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _unique_ids(items: list[Any], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"duplicate {what} id {item.id!r}")
        seen.add(item.id)


# ---------------------------------------------------------------- lessons


class WidgetRef(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    # A card that asks the learner to guess before looking: the widget (and the card's `after`) wait behind a
    # button with this label, so the answer is not on screen while they make up their mind.
    reveal: str | None = Field(None, min_length=3, max_length=60)

    @model_validator(mode="after")
    def _known_widget_with_good_params(self) -> WidgetRef:
        model = WIDGET_PARAMS.get(self.name)
        if model is None:
            raise ValueError(f"unknown widget {self.name!r}; known widgets: {', '.join(sorted(WIDGET_PARAMS))}")
        self.params = model.model_validate(self.params).model_dump()
        return self


class Card(Strict):
    id: Slug
    title: Text
    icon: str = ""
    body: Text
    widget: WidgetRef | None = None
    after: str = Field("", description="Markdown shown below the widget")


PipelineStage = Literal["extract", "transform", "load", "retrieve"]
PIPELINE_STAGES: tuple[str, ...] = ("extract", "transform", "load", "retrieve")  # the order the course follows


class Lesson(Strict):
    id: Slug
    number: int = Field(ge=1, le=99)
    title: Text
    minutes: int = Field(ge=1, le=180)
    summary: Text
    objectives: list[Text] = Field(min_length=1)
    stages: list[PipelineStage] = Field(
        default_factory=list, description="where the lesson sits in the pipeline, lit on its 'you are here' strip "
                                          "(all four for an overview lesson; none: no strip)")
    quiz: Slug | None = None
    cards: list[Card] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _stages_once_in_order(cls, stages: list[str]) -> list[str]:
        if len(set(stages)) != len(stages):
            raise ValueError("a stage is listed twice")
        return sorted(stages, key=PIPELINE_STAGES.index)

    @field_validator("cards")
    @classmethod
    def _unique_card_ids(cls, cards: list[Card]) -> list[Card]:
        _unique_ids(cards, "card")
        return cards


# ---------------------------------------------------------------- quizzes


class Option(Strict):
    id: Slug
    text: Text
    explanation: Text


class QuestionBase(Strict):
    id: Slug
    prompt: Text
    explanation: str = ""


class SingleChoice(QuestionBase):
    type: Literal["single_choice"]
    options: list[Option] = Field(min_length=2)
    answer: Slug

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> SingleChoice:
        _unique_ids(self.options, "option")
        _distinct_texts(self.options)
        if self.answer not in {o.id for o in self.options}:
            raise ValueError(f"answer {self.answer!r} is not among the option ids {[o.id for o in self.options]}")
        return self


class MultipleSelect(QuestionBase):
    type: Literal["multiple_select"]
    options: list[Option] = Field(min_length=3)
    answers: list[Slug] = Field(min_length=1)

    @model_validator(mode="after")
    def _answers_are_options(self) -> MultipleSelect:
        _unique_ids(self.options, "option")
        _distinct_texts(self.options)
        ids = {o.id for o in self.options}
        missing = [a for a in self.answers if a not in ids]
        if missing:
            raise ValueError(f"answers {missing} are not among the option ids {sorted(ids)}")
        if len(set(self.answers)) != len(self.answers):
            raise ValueError("answers list an option twice")
        if len(self.answers) == len(self.options):
            raise ValueError("every option is an answer: add at least one wrong option")
        return self


class FillBlanks(QuestionBase):
    """Text with `___` for each blank; `answers` fill them in order; `bank` holds answers and distractors."""

    type: Literal["fill_blanks"]
    text: Text
    answers: list[Text] = Field(min_length=1)
    bank: list[Text] = Field(min_length=2)

    @model_validator(mode="after")
    def _blanks_match_bank(self) -> FillBlanks:
        blanks = self.text.count(BLANK)
        if blanks == 0:
            raise ValueError(f"text has no blank: mark each blank with {BLANK}")
        if blanks != len(self.answers):
            raise ValueError(f"text has {blanks} blank(s) but {len(self.answers)} answer(s)")
        if len(set(self.bank)) != len(self.bank):
            raise ValueError("word bank lists a word twice")
        missing = [a for a in self.answers if a not in self.bank]
        if missing:
            raise ValueError(f"blank answer(s) {missing} have no matching word in the bank {self.bank}")
        if len(self.bank) <= len(set(self.answers)):
            raise ValueError("word bank needs at least one distractor besides the answers")
        return self

    def segments(self) -> list[str]:
        """The text split around blanks: 'a ___ b ___' -> ['a ', ' b ', '']."""
        return self.text.split(BLANK)


class OrderItem(Strict):
    id: Slug
    text: Text


class Ordering(QuestionBase):
    """Items listed in the correct order; the page shuffles them for the learner."""

    type: Literal["ordering"]
    items: list[OrderItem] = Field(min_length=3)

    @model_validator(mode="after")
    def _no_duplicates(self) -> Ordering:
        _unique_ids(self.items, "item")
        texts = [i.text.lower() for i in self.items]
        if len(set(texts)) != len(texts):
            raise ValueError("ordering lists the same item text twice")
        return self


class Numeric(QuestionBase):
    """A number with a tolerance. The answer is fixed here or comes from the learner's own work (`answer_from`)."""

    type: Literal["numeric"]
    answer: float | None = None
    answer_from: str | None = None
    tolerance: float = 0.0
    relative: bool = Field(False, description="tolerance is a fraction of the answer instead of an absolute amount")
    within_factor: float | None = Field(
        None, gt=1, description="a tolerance on a log scale: right if within this factor of the answer, either way "
                                "(3 accepts a third of the answer up to three times it); for order-of-magnitude estimates")
    unit: str = ""

    @field_validator("tolerance")
    @classmethod
    def _non_negative(cls, v: float) -> float:
        if v < 0:
            raise ValueError("tolerance must not be negative")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Numeric:
        if (self.answer is None) == (self.answer_from is None):
            raise ValueError("give exactly one of `answer` (a number) or `answer_from` (a learner fact)")
        if self.answer_from is not None and self.answer_from not in LEARNER_FACTS:
            raise ValueError(f"unknown answer_from {self.answer_from!r}; known: {', '.join(LEARNER_FACTS)}")
        if self.within_factor is not None:
            if self.tolerance or self.relative:
                raise ValueError("give either `within_factor` (a log-scale tolerance) or `tolerance`, not both")
            if self.answer is not None and self.answer <= 0:
                raise ValueError("`within_factor` needs a positive answer: a factor either way of zero is meaningless")
        return self


class Reflection(QuestionBase):
    """Free text, saved but not graded."""

    type: Literal["reflection"]
    hint: str = ""
    min_chars: int = Field(80, ge=1, le=2000)


Question = Annotated[
    SingleChoice | MultipleSelect | FillBlanks | Ordering | Numeric | Reflection,
    Field(discriminator="type"),
]
QUESTION_TYPES = ("single_choice", "multiple_select", "fill_blanks", "ordering", "numeric", "reflection")


class Quiz(Strict):
    id: Slug
    lesson: Slug
    title: Text
    questions: list[Question] = Field(min_length=1)

    @field_validator("questions")
    @classmethod
    def _unique_question_ids(cls, questions: list[Any]) -> list[Any]:
        _unique_ids(questions, "question")
        return questions


def _distinct_texts(options: list[Option]) -> None:
    norm = [re.sub(r"\s+", " ", o.text.lower()) for o in options]
    if len(set(norm)) != len(norm):
        raise ValueError("two options have the same text: distractors must differ from each other and the answer")


