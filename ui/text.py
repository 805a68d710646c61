"""Show learner-typed or file-provided text as plain text inside Markdown (no formatting, no HTML)."""

from __future__ import annotations

import re

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<&$])")


def escape_md(text: str) -> str:
    """'**hi** <b>' -> '\\*\\*hi\\*\\* \\<b\\>' : Markdown shows the characters instead of interpreting them."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)
