"""How a report card writes its numbers: each kind of value through the course's one set of formatters
(engine.number_format), config values, and the difference between two runs' values.

Every output of the card (the page, the Markdown file, the HTML file) writes a number through these, so a loss or
a duration reads the same in each. `fmt(kind, value)` picks the writer for a kind of value ("int", "loss",
"duration", "rate", "percent", "flops", "flops_rate", "text") and `fmt_difference(kind, a, b)` writes B minus A
with the same rule, plus B / A where both are positive amounts. A missing value is written "–".
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine.number_format import MISSING, count, duration, loss, percent, rate, si


def fmt_value(value: Any) -> str:
    """A config value as text: words as they are, numbers plainly, anything with spaces or newlines quoted.

    >>> [fmt_value(v) for v in (None, True, 0.01, 3e-3, 1337, "adamw", "\\n")]
    ['none', 'true', '0.01', '0.003', '1337', 'adamw', '"\\\\n"']
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if not text or not text.isprintable() or text != text.strip():
        return json.dumps(text, ensure_ascii=False)
    return text


# kind -> how a value of that kind is written; the comparison writes differences with the same rule
_FORMATS = {
    "int": count, "loss": lambda x: loss(x, LOSS_DIGITS), "duration": duration, "rate": rate, "percent": percent,
    "flops": lambda x: f"{x:.3g} ({si(x, 'FLOP')})", "flops_rate": lambda x: si(x, "FLOP/s"),
    "text": lambda x: str(x),
}
LOSS_DIGITS = 4  # a card compares runs that can differ in the third decimal


def fmt(kind: str, value: Any) -> str:
    """A value as the card writes it; '–' for a missing one."""
    return MISSING if value is None else _FORMATS[kind](value)


def fmt_difference(kind: str, a: Any, b: Any) -> str:
    """B minus A in A's units, and B / A where both are positive counts or amounts.

    >>> fmt_difference("int", 5120, 10240), fmt_difference("loss", 3.35, 3.1), fmt_difference("text", "a", "a")
    ('+5,120 (×2)', '-0.2500', 'same')
    """
    if kind == "text":
        return "same" if a == b else "differs"
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return MISSING
    d = b - a
    if kind == "loss":
        return f"{d:+.4f}"
    if kind == "percent":
        return f"{100 * d:+.3g} points"
    sign = "+" if d > 0 else "-" if d < 0 else "±"
    body = {"int": count, "duration": duration, "rate": rate,
            "flops": lambda v: si(v, "FLOP"), "flops_rate": lambda v: si(v, "FLOP/s")}[kind](abs(d))
    ratio = f" (×{b / a:.3g})" if a > 0 and b > 0 else ""
    return f"{sign}{body}{ratio}"
