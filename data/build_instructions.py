"""Build data/instructions.yaml: the instruction set lesson 11 fine-tunes the learner's model on.

Why this set: a 0.6M-parameter character model cannot learn general helpfulness in a minute on a CPU, but it can
learn a fixed question-and-answer format over text it has already read. Every exchange is made from one short line
of tiny Shakespeare (data/tinyshakespeare.txt, the model's own corpus) and the character who speaks it:

- `speaker`: "Who says: <line>" -> the speaker's name, as the corpus writes it (a fact the corpus holds, asked
  backwards: the corpus puts the name before the line);
- `first_word`: "First word: <line>" -> the line's first word (a skill: copy from the question);
- `a_line`: "A line for <NAME>" -> a line that character speaks (a style the model already writes).

The last tenth are held out (the run's validation split, engine.post_training.dialogue_data): their lines appear in
no trained exchange, so a right answer there is the format carried over to a new question, not a memorised one.
Exchanges fit the lesson model's 64-character context with the template's three special tokens.

    python data/build_instructions.py            # rewrite data/instructions.yaml
    python data/build_instructions.py --check    # exit 1 if the shipped file differs from a rebuild
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "tinyshakespeare.txt"
OUT = HERE / "instructions.yaml"
PER_KIND, HELD_OUT_PER_KIND = 400, 40  # 1,200 exchanges, the last 120 held out
SEED = 11  # lesson 11
MIN_LINE, MAX_LINE, MAX_NAME = 12, 34, 10  # characters: short enough for the model's 64-token context

HEADER = """\
# The instruction set lesson 11 fine-tunes the learner's model on (supervised fine-tuning, issue 26).
# Built by data/build_instructions.py from data/tinyshakespeare.txt (public domain); do not edit by hand.
# Each exchange: a question, and the answer the model should learn to give. The last `held_out` are the
# validation exchanges: their lines appear in no trained exchange.
"""


def spoken_lines(text: str) -> list[tuple[str, str]]:
    """(speaker, line) for every line of the corpus's speeches: a speech is a block whose first line is a name and
    a colon."""
    pairs = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if len(lines) >= 2 and lines[0].endswith(":") and lines[0][:-1].replace(" ", "").isalpha():
            pairs.extend((lines[0][:-1], line.strip()) for line in lines[1:] if line.strip())
    return pairs


def first_word(line: str) -> str:
    return line.split()[0].strip(",.;:!?'-")


def build(text: str) -> dict:
    pairs = [(s, line) for s, line in spoken_lines(text)
             if MIN_LINE <= len(line) <= MAX_LINE and len(s) <= MAX_NAME and s.isupper() and first_word(line)]
    rng = random.Random(SEED)
    unique = sorted(set(pairs))
    rng.shuffle(unique)
    per_kind = PER_KIND
    makers = {
        "speaker": lambda s, line: (f"Who says: {line}", s),
        "first_word": lambda s, line: (f"First word: {line}", first_word(line)),
        "a_line": lambda s, line: (f"A line for {s}", line),
    }
    chunks = {kind: unique[i * per_kind:(i + 1) * per_kind] for i, kind in enumerate(makers)}
    train, held = [], []
    for kind, make in makers.items():
        rows = [{"kind": kind, "question": q, "answer": a} for q, a in (make(s, line) for s, line in chunks[kind])]
        train += rows[:-HELD_OUT_PER_KIND]
        held += rows[-HELD_OUT_PER_KIND:]
    rng.shuffle(train)
    return {"source": "tinyshakespeare", "held_out": len(held), "exchanges": train + held}


def render(data: dict) -> str:
    return HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare the shipped file with a rebuild")
    args = parser.parse_args()
    fresh = render(build(CORPUS.read_text(encoding="utf-8")))
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == fresh
        print("data/instructions.yaml matches a rebuild" if same else "data/instructions.yaml differs from a rebuild")
        return 0 if same else 1
    OUT.write_text(fresh, encoding="utf-8")
    print(f"wrote {OUT} ({len(fresh):,} characters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
