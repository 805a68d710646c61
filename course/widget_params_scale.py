"""The parameters of the widgets on training at scale and after pre-training: lesson 9's data-parallel run and its
picture of the ways to split a model over GPUs, and lesson 11's chat template, supervised fine-tuning, chat box,
LoRA and preference pair. course.widgets lists them with all the others.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from course.widget_params import WidgetParams
from course.widget_params_catalogue import _check_published_model

RUN_KEY = r"^[a-z0-9_-]+$"


class DataParallelParams(WidgetParams):
    """Lesson 9: the learner's model trained by one process and by two (torchrun, gloo), side by side."""

    time_budget: int = Field(20, ge=5, le=120, description="seconds each run trains")
    run_key: str = Field("ddp", pattern=RUN_KEY)


class ParallelismMapParams(WidgetParams):
    """Lesson 9: what each GPU holds under data parallelism, ZeRO/FSDP, tensor and pipeline parallelism, for a
    published model (data/published_models.yaml) over a GPU count the learner slides (powers of two)."""

    GPU_COUNTS: ClassVar[tuple[int, ...]] = tuple(2 ** i for i in range(11))  # 1 to 1,024: the slider's stops
    MICRO_BATCHES: ClassVar[tuple[int, ...]] = tuple(2 ** i for i in range(7))  # 1 to 64

    model: str = "llama3_8b"
    gpus: int = Field(8, description="GPUs the picture opens with, a power of two from 1 to 1,024")
    micro_batches: int = Field(8, description="micro-batches per pipeline step, a power of two from 1 to 64")

    _model = field_validator("model")(_check_published_model)

    @field_validator("gpus")
    @classmethod
    def _gpu_stop(cls, value: int) -> int:
        if value not in cls.GPU_COUNTS:
            raise ValueError(f"gpus must be one of the slider's stops {cls.GPU_COUNTS}, not {value}")
        return value

    @field_validator("micro_batches")
    @classmethod
    def _micro_stop(cls, value: int) -> int:
        if value not in cls.MICRO_BATCHES:
            raise ValueError(f"micro_batches must be one of {cls.MICRO_BATCHES}, not {value}")
        return value


class ChatTemplateParams(WidgetParams):
    """Lesson 11: a conversation turned into the one string, and the tokens, a chat model is trained on."""

    question: str = Field("Who says: Be hostages for Rome.", min_length=1, max_length=200,
                          description="the exchange's question, editable (default: one of the instruction set's)")
    answer: str = Field("AUFIDIUS", min_length=1, max_length=200, description="the exchange's answer, editable")
    source_run_key: str = Field("main", pattern=RUN_KEY, description="the learner's run whose tokenizer is shown")


class SftRunParams(WidgetParams):
    """Lesson 11: supervised fine-tuning of the learner's model on the bundled instruction set."""

    steps: int = Field(200, ge=20, le=2000, description="optimizer steps")
    run_key: str = Field("assistant", pattern=RUN_KEY)
    source_run_key: str = Field("main", pattern=RUN_KEY, description="the learner's run to start from")


class ChatBoxParams(WidgetParams):
    """Lesson 11: talk to the fine-tuned model, with the template it reads shown."""

    run_key: str = Field("assistant", pattern=RUN_KEY, description="the fine-tune to talk to")
    temperature: float = Field(0.0, ge=0.0, le=1.5, description="the temperature the box opens with (0: greedy)")


class LoraCompareParams(WidgetParams):
    """Lesson 11: the same supervised fine-tune done with LoRA adapters, beside the full one."""

    rank: int = Field(4, ge=1, le=32, description="the adapters' rank")
    steps: int = Field(200, ge=20, le=2000, description="optimizer steps, as many as the full fine-tune's")
    run_key: str = Field("lora", pattern=RUN_KEY)
    full_run_key: str = Field("assistant", pattern=RUN_KEY, description="the full fine-tune it is compared with")
    source_run_key: str = Field("main", pattern=RUN_KEY)


class PreferencePairParams(WidgetParams):
    """Lesson 11: one preference pair, scored and learned from with DPO, worked with numbers."""

    beta: float = Field(0.1, gt=0, le=1.0, description="how far DPO lets the model move from its reference")
    steps: int = Field(20, ge=1, le=100, description="DPO steps on the one pair")
    lr: float = Field(3e-5, gt=0, le=1e-2, description="AdamW's learning rate for those steps")
    prompt: str = Field("ROMEO:\n", min_length=1, max_length=200, description="the pair's prompt, editable")
    chosen: str = Field("I love thee, sweet lady.", min_length=1, max_length=200, description="the preferred answer")
    rejected: str = Field("I hate thee, foul lady.", min_length=1, max_length=200, description="the other answer")
