"""Show learner-typed or file-provided text as plain text inside Markdown (no formatting, no HTML, no shortcodes)."""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"  # zero width, no line break: splits ":smile:" or "->" so Streamlit leaves them alone
_ASCII_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # everything CommonMark lets a backslash escape
_REWRITTEN_AFTER = re.compile(r"([:\-<>~])(?=.)")  # starts of :shortcode:, ->, <-, --, >=, <=, ~=


def escape_md(text: str) -> str:
    """Make text show literally in Markdown, also inside a colour directive's label: every ASCII punctuation mark
    is backslash-escaped (so `]` cannot close a label, `*` or `` ` `` cannot format, `<b>` stays text) and the
    marks Streamlit rewrites after parsing (`:smile:`, `->`) get a word joiner after them.

    >>> escape_md("a]b") == "a\\\\]b"
    True
    >>> escape_md(":x:") == "\\\\:" + WORD_JOINER + "x\\\\:"
    True
    """
    return _REWRITTEN_AFTER.sub(lambda m: m.group(1) + WORD_JOINER, _ASCII_PUNCT.sub(r"\\\1", text))


_BARE_PIPE = re.compile(r"(?<!\\)\|")


def markdown_table(rows: list[dict[str, str]]) -> str:
    """Rows as a Markdown table: one element, light to redraw. Cells are Markdown (escape file-provided text with
    `ui.text.escape_md`); a bare `|` is escaped so it cannot split a cell.

    >>> print(markdown_table([{"a": "1", "b": "x|y"}]))
    | a | b |
    |---|---|
    | 1 | x\\|y |
    """
    heads = list(rows[0])
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(_BARE_PIPE.sub(r"\\|", r[h]) for h in heads) + " |" for r in rows]
    return "\n".join(lines)
