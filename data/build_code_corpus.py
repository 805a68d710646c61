"""Build data/python_stdlib_sample.txt: a "code" corpus from selected Python standard-library modules.

Why: the course contrasts prose (tiny Shakespeare) with code, whose tokens look nothing alike (indentation,
identifiers, punctuation). The Python standard library is openly licensed (PSF License Agreement, see
data/python_stdlib_LICENSE.txt) and is already on every machine that runs the course, so no download is needed.

Deterministic: the same interpreter version gives the same bytes. The modules are a fixed list, read in that
order from this interpreter's own standard library (`sysconfig.get_paths()["stdlib"]`), each preceded by a
marker line `# ==== file: Lib/<path> ====` so the corpus can be split back into one document per module.

    python data/build_code_corpus.py            # rewrite the corpus (and the licence copy)
    python data/build_code_corpus.py --check    # exit 1 if the shipped file differs from a rebuild

The shipped file was built with CPython 3.11.7; another version gives slightly different text.
"""

from __future__ import annotations

import argparse
import platform
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "python_stdlib_sample.txt"
LICENSE_OUT = HERE / "python_stdlib_LICENSE.txt"
FILE_MARKER = "# ==== file: Lib/{path} ===="

# Small, readable, pure-Python modules: a mix of docstrings, comments and algorithmic code.
MODULES = [
    "bisect.py",
    "colorsys.py",
    "fnmatch.py",
    "glob.py",
    "sched.py",
    "abc.py",
    "copy.py",
    "graphlib.py",
    "numbers.py",
    "queue.py",
    "string.py",
    "shlex.py",
    "json/__init__.py",
    "json/decoder.py",
    "json/encoder.py",
    "json/scanner.py",
    "json/tool.py",
    "csv.py",
    "html/parser.py",
    "textwrap.py",
    "base64.py",
    "heapq.py",
    "pprint.py",
    "calendar.py",
    "contextlib.py",
    "fractions.py",
    "random.py",
    "functools.py",
    "statistics.py",
]


def build(stdlib: Path) -> str:
    """The corpus text: a short header, then each module behind its marker line."""
    version = platform.python_version()
    parts = [
        f"# Python standard library sample: {len(MODULES)} modules of CPython {version}, for the course's\n"
        "# code corpus. Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved.\n"
        "# Used under the PSF License Agreement (see python_stdlib_LICENSE.txt beside this file).\n",
    ]
    for rel in MODULES:
        source = (stdlib / rel).read_bytes().decode("utf-8").replace("\r\n", "\n")
        parts.append("\n" + FILE_MARKER.format(path=rel) + "\n" + source.rstrip("\n") + "\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing")
    args = parser.parse_args(argv)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    text = build(stdlib)
    if args.check:
        same = OUT.exists() and OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"differs from a rebuild with Python {platform.python_version()}")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8", newline="\n")
    LICENSE_OUT.write_text((stdlib / "LICENSE.txt").read_text(encoding="utf-8"), encoding="utf-8", newline="\n")
    print(f"wrote {OUT.name}: {len(text.encode('utf-8')):,} bytes, {len(text):,} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
