"""The bundled instruction set (data/instructions.yaml, built by data/build_instructions.py), read safely.

Three kinds of exchange over lines of tiny Shakespeare: who says a line, the first word of a line, a line for a
character. The last `held_out` exchanges are the validation split of an SFT run (their lines appear in no trained
exchange), which is why `run_text` keeps the file's order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.post_training.chat_template import SPECIAL_NAMES, render
from engine.post_training.dialogue_data import held_out_count

INSTRUCTIONS = Path(__file__).resolve().parents[2] / "data" / "instructions.yaml"
KINDS = {"speaker": "Who says a line", "first_word": "The first word of a line", "a_line": "A line for a character"}


@dataclass(frozen=True)
class Exchange:
    kind: str
    question: str
    answer: str


@dataclass(frozen=True)
class InstructionSet:
    source: str  # the corpus id its lines come from
    exchanges: tuple[Exchange, ...]
    held_out: int

    @property
    def train(self) -> tuple[Exchange, ...]:
        return self.exchanges[:-self.held_out]

    @property
    def validation(self) -> tuple[Exchange, ...]:
        return self.exchanges[-self.held_out:]

    def run_text(self) -> str:
        """What an SFT run trains on: every exchange in the template, the held-out ones last."""
        return "".join(render(e.question, e.answer) for e in self.exchanges)


def parse(data: object, where: str = "instructions") -> InstructionSet:
    """Check a loaded instruction file and build the set; a ValueError says what is wrong and where."""
    if not isinstance(data, dict) or not isinstance(data.get("exchanges"), list):
        raise ValueError(f"{where}: expected a mapping with a list of `exchanges`")
    exchanges = []
    for i, row in enumerate(data["exchanges"]):
        if not isinstance(row, dict) or row.get("kind") not in KINDS:
            raise ValueError(f"{where}: exchange {i + 1} needs a kind, one of {', '.join(KINDS)}")
        question, answer = row.get("question"), row.get("answer")
        if not (isinstance(question, str) and isinstance(answer, str) and question and answer):
            raise ValueError(f"{where}: exchange {i + 1} needs a question and an answer, both text")
        if any(ch in SPECIAL_NAMES for ch in question + answer):
            raise ValueError(f"{where}: exchange {i + 1} holds a special token's character")
        exchanges.append(Exchange(row["kind"], question, answer))
    held = data.get("held_out")
    if len(exchanges) < 2 or held != held_out_count(len(exchanges)):
        raise ValueError(f"{where}: `held_out` must be {held_out_count(max(2, len(exchanges)))} for "
                         f"{len(exchanges)} exchanges (the last tenth), not {held!r}")
    return InstructionSet(str(data.get("source", "")), tuple(exchanges), held)


@functools.lru_cache(maxsize=1)
def bundled() -> InstructionSet:
    """The course's instruction set."""
    return parse(yaml.safe_load(INSTRUCTIONS.read_text(encoding="utf-8")), where=INSTRUCTIONS.name)
