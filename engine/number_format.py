"""How the course writes a number, on screen and in the files a learner downloads: one set of formatters.

Counts, losses, powers of ten, SI prefixes, durations (in words, or as a m:ss clock while a run counts down),
money, rates, percentages and file sizes. The cost lesson's numbers run from a toy run's 10^11 FLOPs to a frontier
model's 10^25 and from microseconds to millennia, and the same figure appears on a page, in a report card's
Markdown and in its HTML: written by these functions, it reads the same everywhere, and tests compare what a page
shows with the engine's numbers through them. A missing value is written "–".
"""

from __future__ import annotations

import math

MISSING = "–"
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
             (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def _missing(x: float | None) -> bool:
    return x is None or not math.isfinite(x)


def count(n: int | None) -> str:
    """A count with thousands separators.

    >>> count(1234567), count(None)
    ('1,234,567', '–')
    """
    return MISSING if n is None else f"{int(n):,}"


def loss(x: float | None, digits: int = 3) -> str:
    """A loss in nats to `digits` decimals; 'NaN' or 'inf' after a divergence.

    >>> loss(3.350125), loss(3.350125, 4), loss(None), loss(float("nan"))
    ('3.350', '3.3501', '–', 'NaN')
    """
    if x is None:
        return MISSING
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else "inf"
    return f"{x:.{digits}f}"


def sci(x: float, digits: int = 3) -> str:
    """A number as `a × 10ⁿ` with `digits` significant figures (plain between 0.01 and 10,000).

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


def si(x: float | None, unit: str, digits: int = 3) -> str:
    """A number with an SI prefix: giga, tera, ... (pico at the small end, powers of ten beyond exa).

    >>> si(865920000.0, "FLOP/s"), si(0.0042, "Wh"), si(2.5e20, "FLOP/s"), si(0, "FLOP"), si(None, "FLOP")
    ('866 MFLOP/s', '4.2 mWh', '250 EFLOP/s', '0 FLOP', '–')
    """
    if x is None:
        return MISSING
    if x == 0 or not math.isfinite(x):
        return f"{x:g} {unit}"
    for scale, prefix in _PREFIXES:
        if abs(x) >= scale:
            if abs(x) >= 1000 * _PREFIXES[0][0]:
                return f"{sci(x, digits)} {unit}"
            return f"{_significant(x / scale, digits)} {prefix}{unit}"
    return f"{sci(x, digits)} {unit}"


def duration(seconds: float | None) -> str:
    """A duration in the unit a person would use.

    >>> duration(0.0005), duration(0.0123), duration(42), duration(5400), duration(3 * 86400), duration(4e11)
    ('500 µs', '12.3 ms', '42 s', '90 minutes', '3 days', '12,675 years')
    """
    if _missing(seconds):
        return MISSING
    if seconds < 1:
        return si(seconds, "s")
    for limit, size, unit in ((120, 1, "s"), (7200, 60, "minutes"), (3 * 86400, 3600, "hours"),
                              (2 * 365.25 * 86400, 86400, "days")):
        if seconds < limit:
            return f"{seconds / size:,.3g} {unit}"
    years = seconds / (365.25 * 86400)
    return f"{years:,.0f} years" if years >= 1000 else f"{years:,.3g} years"


def clock(seconds: float | None) -> str:
    """Minutes and seconds, as a run's time left or time trained reads while it trains.

    >>> clock(60), clock(3725.4), clock(None)
    ('1:00', '62:05', '–')
    """
    if _missing(seconds):
        return MISSING
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def dollars(x: float | None, sign: bool = True) -> str:
    """Money: cents for small sums, whole dollars for big ones; "not recorded" for a chip without a price.
    `sign=False` leaves out the `$` (a file for Markdown viewers that read `$...$` as mathematics says USD in its
    column instead).

    >>> dollars(5.3412), dollars(4.1e-7), dollars(4_630_000.0), dollars(None), dollars(5.3412, sign=False)
    ('$5.34', 'under a cent ($4.1 × 10⁻⁷)', '$4,630,000', 'not recorded', '5.34')
    """
    if x is None:
        return "not recorded"
    s = "$" if sign else ""
    if x >= 1000:
        return f"{s}{x:,.0f}"
    if x >= 0.01 or x == 0:
        return f"{s}{x:,.2f}"
    return f"under a cent ({s}{sci(x, 2)})"


def rate(x: float | None) -> str:
    """Tokens per second, to the token.

    >>> rate(40881.289), rate(None)
    ('40,881', '–')
    """
    return MISSING if _missing(x) else f"{x:,.0f}"


def percent(x: float | None) -> str:
    """A fraction as a percentage, 3 significant digits.

    >>> percent(0.0866), percent(None)
    ('8.66%', '–')
    """
    return MISSING if x is None else f"{100 * x:.3g}%"


def file_size(n: int) -> str:
    """Bytes the way a file manager shows them (powers of 1,000).

    >>> file_size(2_431_752), file_size(677_312), file_size(64), file_size(1)
    ('2.43 MB', '677.3 kB', '64 bytes', '1 byte')
    """
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} MB"
    if n >= 1_000:
        return f"{n / 1e3:.1f} kB"
    return "1 byte" if n == 1 else f"{n} bytes"
