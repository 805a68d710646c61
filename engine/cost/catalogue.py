"""The two reference catalogues behind the cost lesson: accelerators and published models, read from YAML.

`data/accelerators.yaml` lists chips (peak dense 16-bit and FP32 TFLOP/s, memory, power draw, an indicative
hourly cloud price with its date); `data/published_models.yaml` lists well-known trained models (parameters,
training tokens, reported compute, energy and emissions). Every row names its `source:` (a datasheet, a paper, a
model card), and a figure that was not published is `null`, never a guess. The rows and their rules live in the
top-level `manifests` module, shared with the content validator; here they are read strictly and once: a
ValueError naming the file, the row and the field stops the first use of a broken catalogue.

>>> [a.id for a in accelerators()][:3]
['a100_40gb', 'h100_sxm', 'h200']
>>> accelerator("h100_sxm").tflops_16bit, model("gpt3_175b").training_flops
(989.0, 3.14e+23)
"""

from __future__ import annotations

import functools

import manifests
import paths
from manifests import Accelerator, PublishedModel

ACCELERATORS = paths.ACCELERATORS
PUBLISHED_MODELS = paths.PUBLISHED_MODELS


def parse_accelerators(text: str, filename: str = manifests.ACCELERATORS.name) -> list[Accelerator]:
    """Accelerator YAML -> rows; a price needs its date, `kind` is gpu or cpu (manifests.ACCELERATORS).

    >>> parse_accelerators("- {id: x, name: X, kind: tpu}")
    Traceback (most recent call last):
    ...
    ValueError: accelerators.yaml, row 1 ('x'), field 'tflops_16bit': missing (write null if it was not published)
    """
    return manifests.ACCELERATORS.parse(text, filename)


def parse_published_models(text: str, filename: str = manifests.PUBLISHED_MODELS.name) -> list[PublishedModel]:
    """Published-models YAML -> rows (manifests.PUBLISHED_MODELS).

    >>> parse_published_models("- {id: x, name: X, year: 2020, parameters: 1.5e9}")
    Traceback (most recent call last):
    ...
    ValueError: published_models.yaml, row 1 ('x'), field 'parameters': expected a number, not '1.5e9' (YAML reads 1.5e9 as text: write 1.5e+9)
    """
    return manifests.PUBLISHED_MODELS.parse(text, filename)


@functools.cache
def accelerators() -> tuple[Accelerator, ...]:
    """Every row of data/accelerators.yaml, in file order (read once)."""
    return tuple(manifests.ACCELERATORS.read(ACCELERATORS))


@functools.cache
def published_models() -> tuple[PublishedModel, ...]:
    """Every row of data/published_models.yaml, in file order (read once)."""
    return tuple(manifests.PUBLISHED_MODELS.read(PUBLISHED_MODELS))


def accelerator(accelerator_id: str) -> Accelerator:
    """One accelerator by id; KeyError lists the ids there are."""
    return manifests.find(accelerators(), accelerator_id, "accelerator")


def model(model_id: str) -> PublishedModel:
    """One published model by id; KeyError lists the ids there are."""
    return manifests.find(published_models(), model_id, "published model")
