"""The engine's entry points to data/*.yaml (catalogues, corpus manifest; all read by manifests.py) on hostile files:
a ValueError naming the file, quickly, never a hang (an alias bomb in a message), a RecursionError or a bare PyYAML
crash. `course.validate` refuses such files first; these readers must still not take a page down if one ships."""

from __future__ import annotations

import pytest

from engine.cost.catalogue import parse_accelerators, parse_published_models
from engine.extract.bundled import parse_manifest

CHAIN = "&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol], " + ", ".join(
    f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9))  # 10**9 values from one line
HOSTILE = [
    ("- [" + CHAIN + "]\n", "must be a mapping"),
    ("- id: x\n  name: X\n  kind: gpu\n  tflops_16bit: [" + CHAIN + "]\n", "expected a number"),
    ("- " + "[" * 600 + "]" * 600 + "\n", "not readable YAML"),  # past Python's recursion limit
    ("- {id: x, year: 2020-13-45}\n", "not readable YAML"),
    ("- {id: !!int junk}\n", "not readable YAML"),
    ("- [unclosed\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "words"), HOSTILE)
@pytest.mark.parametrize(("parse", "name"), [(parse_accelerators, "accelerators.yaml"),
                                             (parse_published_models, "published_models.yaml"),
                                             (parse_manifest, "corpora.yaml")])
def test_hostile_data_files_give_a_short_error_naming_the_file(parse, name, text, words):
    with pytest.raises(ValueError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith(name) and len(message) < 400, message
    if parse is parse_accelerators:  # the other files' rows may stop at another field first
        assert words in message, message
