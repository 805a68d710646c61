"""How a report card writes its numbers: counts, losses, SI prefixes, durations, dollars, rates, percentages, config
values, and the difference between two runs' values.

Every output of the card (the page, the Markdown file, the HTML file) writes a number through these, so a loss or
a duration reads the same in each. `fmt(kind, value)` picks the writer for a kind of value ("int", "loss",
"duration", "rate", "percent", "flops", "flops_rate", "text") and `fmt_difference(kind, a, b)` writes B minus A
with the same rule, plus B / A where both are positive amounts. A missing value is written "–".
"""

from __future__ import annotations

import json
import math
from typing import Any

_PREFIXES = ((1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"),
             (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def fmt_int(n: int) -> str:
    """A count with thousands separators.

    >>> fmt_int(1234567)
    '1,234,567'
    """
    return f"{int(n):,}"


def fmt_loss(x: float | None) -> str:
    """A loss to 4 decimals; '–' where there is none and 'NaN'/'inf' after a divergence.

    >>> fmt_loss(3.350125), fmt_loss(None), fmt_loss(float("nan"))
    ('3.3501', '–', 'NaN')
    """
    if x is None:
        return "–"
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else "inf"
    return f"{x:.4f}"


def fmt_si(x: float | None, unit: str) -> str:
    """3 significant digits with an SI prefix.

    >>> fmt_si(886_702_080.0, "FLOP"), fmt_si(1.66e-3, "Wh"), fmt_si(0, "FLOP/s")
    ('887 MFLOP', '1.66 mWh', '0 FLOP/s')
    """
    if x is None or not math.isfinite(x):
        return "–"
    if x == 0:
        return f"0 {unit}"
    for scale, prefix in _PREFIXES:
        if abs(x) >= scale * 0.9995:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def fmt_duration(seconds: float | None) -> str:
    """A duration in the unit a person would use.

    >>> [fmt_duration(s) for s in (2e-6, 0.0123, 0.12524, 61.5, 900, 5400 * 4, 86400 * 40)]
    ['2 µs', '12.3 ms', '125 ms', '61.50 s', '15.0 min', '6.0 h', '40.0 days']
    """
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = abs(seconds)
    if s == 0:
        return "0 s"
    if s < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if s < 1:
        return f"{seconds * 1e3:.3g} ms"
    if s < 120:
        return f"{seconds:.2f} s"
    if s < 7200:
        return f"{seconds / 60:.1f} min"
    if s < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.1f} days"


def fmt_dollars(x: float | None) -> str:
    """US dollars (the column says so: no `$`, which some Markdown viewers read as maths).

    >>> fmt_dollars(5.3421), fmt_dollars(0.0000012345), fmt_dollars(None)
    ('5.34', '1.2e-06', 'no price listed')
    """
    if x is None:
        return "no price listed"
    return f"{x:,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2g}"


def fmt_rate(x: float | None) -> str:
    """Tokens per second, to the token.

    >>> fmt_rate(40881.289), fmt_rate(None)
    ('40,881', '–')
    """
    return "–" if x is None or not math.isfinite(x) else f"{x:,.0f}"


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


def fmt_percent(x: float | None) -> str:
    """A fraction as a percentage, 3 significant digits.

    >>> fmt_percent(0.0866)
    '8.66%'
    """
    return "–" if x is None else f"{100 * x:.3g}%"


# kind -> how a value of that kind is written; the comparison writes differences with the same rule
_FORMATS = {
    "int": fmt_int, "loss": fmt_loss, "duration": fmt_duration, "rate": fmt_rate, "percent": fmt_percent,
    "flops": lambda x: f"{x:.3g} ({fmt_si(x, 'FLOP')})", "flops_rate": lambda x: fmt_si(x, "FLOP/s"),
    "text": lambda x: str(x),
}


def fmt(kind: str, value: Any) -> str:
    """A value as the card writes it; '–' for a missing one."""
    return "–" if value is None else _FORMATS[kind](value)


def fmt_difference(kind: str, a: Any, b: Any) -> str:
    """B minus A in A's units, and B / A where both are positive counts or amounts.

    >>> fmt_difference("int", 5120, 10240), fmt_difference("loss", 3.35, 3.1), fmt_difference("text", "a", "a")
    ('+5,120 (×2)', '-0.2500', 'same')
    """
    if kind == "text":
        return "same" if a == b else "differs"
    if a is None or b is None:
        return "–"
    if not (math.isfinite(a) and math.isfinite(b)):
        return "–"
    d = b - a
    if kind == "loss":
        return f"{d:+.4f}"
    if kind == "percent":
        return f"{100 * d:+.3g} points"
    sign = "+" if d > 0 else "-" if d < 0 else "±"
    body = {"int": lambda v: fmt_int(v), "duration": fmt_duration, "rate": fmt_rate,
            "flops": lambda v: fmt_si(v, "FLOP"), "flops_rate": lambda v: fmt_si(v, "FLOP/s")}[kind](abs(d))
    ratio = f" (×{b / a:.3g})" if a > 0 and b > 0 else ""
    return f"{sign}{body}{ratio}"
