"""Tokens drawn as coloured chips: Streamlit Markdown colour directives (`:blue-background[tok]`), never raw HTML.

Token text is learner text, so `chip` escapes every ASCII punctuation character (brackets, colons, backticks,
backslashes...) and breaks up the sequences Streamlit rewrites after parsing (emoji shortcodes `:smile:`,
`:material/...:` icons, `->`, `--`) with an invisible word joiner (`ui.text.escape_md`). Spaces, tabs and newlines
are drawn as visible marks (␣ ⇥ ⏎) so learners see them. Shared by the tokenizer playground and the BPE trainer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ui.text import escape_md

PALETTE = ("blue", "orange")  # adjacent chips alternate; both stay readable in the light and the dark theme
SPACE, NEWLINE, TAB, RETURN = "␣", "⏎", "⇥", "␍"


def visible(text: str) -> str:
    """Text with its invisible characters made visible, as chips and tables show it.

    >>> visible(" a\\tb\\n"), visible("\\u200b"), visible("\\u0301")
    ('␣a⇥b⏎', '⟨U+200B⟩', '◌́')
    """
    out = []
    for i, ch in enumerate(text):
        if ch == " ":
            out.append(SPACE)
        elif ch == "\n":
            out.append(NEWLINE)
        elif ch == "\t":
            out.append(TAB)
        elif ch == "\r":
            out.append(RETURN)
        else:
            cat = unicodedata.category(ch)
            if cat == "Cc" and ord(ch) < 0x20:
                out.append(chr(0x2400 + ord(ch)))  # the Control Pictures block: ␀ ␁ ...
            elif cat in ("Cc", "Cf", "Co", "Cn", "Cs", "Zs", "Zl", "Zp"):
                out.append(f"⟨U+{ord(ch):04X}⟩")  # zero-width joiners, odd spaces, private use...
            elif cat.startswith("M") and i == 0:
                out.append("◌" + ch)  # a combining accent on its own: give it a dotted circle to sit on
            else:
                out.append(ch)
    return "".join(out)


def chip(text: str, colour: str = PALETTE[0]) -> str:
    """One token as a coloured chip: ' the' -> ':blue-background[␣the]'."""
    return f":{colour}-background[{escape_md(visible(text)) or '∅'}]"


def chips_markdown(pieces: Sequence[str], palette: Sequence[str] = PALETTE) -> str:
    """Tokens as one Markdown paragraph of chips in alternating colours; a token holding a newline ends the line
    (a hard break), so code keeps its shape.

    >>> chips_markdown(["a", " b\\n", "c"])
    ':blue-background[a] :orange-background[␣b⏎]\\\\\\n:blue-background[c]'
    """
    out = []
    for i, piece in enumerate(pieces):
        out.append(chip(piece, palette[i % len(palette)]))
        out.append("\\\n" if "\n" in piece else " ")
    return "".join(out[:-1])  # a break at the very end would show as a stray backslash
