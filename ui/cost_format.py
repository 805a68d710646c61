"""How lessons 7, 9 and 10 write their numbers on screen: powers of ten, SI prefixes, durations, money and bytes.

The cost lesson's numbers run from a toy run's 10^11 FLOPs to a frontier model's 10^25, and from microseconds to
millennia; one set of formatters keeps every widget writing them the same way, and tests compare what a page shows
with the engine's numbers through the same functions.
"""

from __future__ import annotations

import math
import re

_BARE_PIPE = re.compile(r"(?<!\\)\|")
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
             (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def sci(x: float, digits: int = 3) -> str:
    """A number as `a × 10ⁿ` with `digits` significant figures (plain below 10,000).

    >>> sci(3.14e23), sci(221675520.0), sci(1234.0), sci(0.0)
    ('3.14 × 10²³', '2.22 × 10⁸', '1,234', '0')
    """
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if 1e-2 <= abs(x) < 1e4:
        return f"{x:,.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def _significant(x: float, digits: int) -> str:
    """`digits` significant figures without an exponent (for numbers below 1000).

    >>> _significant(500.2, 2), _significant(4.2, 3), _significant(12.345, 3)
    ('500', '4.2', '12.3')
    """
    return f"{float(f'{x:.{digits}g}'):g}"


def si(x: float, unit: str, digits: int = 3) -> str:
    """A number with an SI prefix: giga, tera, ... (micro at the small end, powers of ten beyond exa).

    >>> si(865920000.0, "FLOP/s"), si(0.0042, "Wh"), si(2.5e20, "FLOP/s")
    ('866 MFLOP/s', '4.2 mWh', '250 EFLOP/s')
    """
    if x == 0 or not math.isfinite(x):
        return f"{x:g} {unit}"
    for scale, prefix in _PREFIXES:
        if abs(x) >= scale:
            if abs(x) >= 1000 * _PREFIXES[0][0]:
                return f"{sci(x, digits)} {unit}"
            return f"{_significant(x / scale, digits)} {prefix}{unit}"
    return f"{sci(x, digits)} {unit}"


def duration(seconds: float) -> str:
    """A duration in the unit a person would use.

    >>> duration(0.0005), duration(42), duration(5400), duration(3 * 86400), duration(4e11)
    ('500 µs', '42 s', '90 minutes', '3 days', '12,675 years')
    """
    if seconds < 1:
        return si(seconds, "s", 2)
    for limit, size, unit in ((120, 1, "s"), (7200, 60, "minutes"), (3 * 86400, 3600, "hours"),
                              (2 * 365.25 * 86400, 86400, "days")):
        if seconds < limit:
            return f"{seconds / size:,.3g} {unit}"
    years = seconds / (365.25 * 86400)
    return f"{years:,.0f} years" if years >= 1000 else f"{years:,.3g} years"


def dollars(x: float | None) -> str:
    """Money: cents for small sums, whole dollars for big ones; "not recorded" for a chip without a price.

    >>> dollars(5.3412), dollars(4.1e-7), dollars(4_630_000.0), dollars(None)
    ('$5.34', 'under a cent ($4.1 × 10⁻⁷)', '$4,630,000', 'not recorded')
    """
    if x is None:
        return "not recorded"
    if x >= 1000:
        return f"${x:,.0f}"
    if x >= 0.01 or x == 0:
        return f"${x:,.2f}"
    return f"under a cent (${sci(x, 2)})"


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


def human_bytes(n: int) -> str:
    """Bytes the way a file manager shows them (powers of 1,000): the checkpoint cards of lessons 7 and 10.

    >>> human_bytes(2_431_752), human_bytes(677_312), human_bytes(64), human_bytes(1)
    ('2.43 MB', '677.3 kB', '64 bytes', '1 byte')
    """
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} MB"
    if n >= 1_000:
        return f"{n / 1e3:.1f} kB"
    return "1 byte" if n == 1 else f"{n} bytes"
