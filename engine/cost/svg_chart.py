"""Loss curves as a small, self-contained SVG: the chart a downloaded report card carries with it.

A report card must open anywhere, offline, years later: in a Markdown viewer (as a `data:` image) or a saved HTML
file (inline). So the chart is plain SVG text made here, with no plotting library, no script, no font download and
no external reference. It paints its own white background and dark ink, so it reads the same whether the viewer
shows it on a light or a dark page. Every piece of text (series names, titles) is escaped: names can be a
learner's labels.

>>> svg = line_chart_svg([Series("val", [(0, 4.2), (100, 2.5)], "#2e86de", bold=True)], title="Loss")
>>> svg.startswith("<svg") and svg.endswith("</svg>") and "<script" not in svg
True
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 320
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 20, 52, 48
MAX_POINTS = 800  # a longer curve is thinned (evenly, keeping its last point): the file stays small
INK, GRID, BACKGROUND = "#1f2937", "#e5e7eb", "#ffffff"
FONT = "font-family=\"Helvetica, Arial, sans-serif\""
SVG_NS = "http://www.w3.org/2000/svg"  # only in a standalone file (a data: image); inline HTML SVG needs none


@dataclass(frozen=True)
class Series:
    """One line. `bold`: thick, with a dot at every point (validation estimates); otherwise thin and
    semi-transparent (the noisy per-batch loss). `dashed` tells a second run apart without colour alone."""

    name: str
    points: list[tuple[float, float]]
    colour: str
    bold: bool = False
    dashed: bool = False


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten).

    >>> nice_ticks(0, 100)
    [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    >>> nice_ticks(1.63, 4.2)
    [1.0, 2.0, 3.0, 4.0, 5.0]
    >>> nice_ticks(0, 0.0004)
    [0.0, 0.0001, 0.0002, 0.0003, 0.0004]
    """
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    value = start
    while value < hi + step * 0.999:
        ticks.append(round(value, 10))
        if value >= hi - 1e-9 * step:
            break
        value += step
    return [float(t) for t in ticks]


def tick_label(value: float) -> str:
    """A tick's text: whole numbers with thousands separators, others with up to 3 significant digits.

    >>> tick_label(12000.0), tick_label(2.5), tick_label(0.0)
    ('12,000', '2.5', '0')
    """
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3g}"


def _thin(points: list[tuple[float, float]], limit: int = MAX_POINTS) -> list[tuple[float, float]]:
    if len(points) <= limit:
        return points
    every = math.ceil(len(points) / limit)
    kept = points[::every]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def _finite(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]


def _segments(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Split a curve at missing values (NaN after a divergence): the line breaks instead of lying."""
    out: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if math.isfinite(x) and math.isfinite(y):
            out[-1].append((x, y))
        elif out[-1]:
            out.append([])
    return [s for s in out if s]


def _legend_layout(series: list[Series], width: int) -> list[tuple[float, int, float]]:
    """(x, row, entry width) of each legend entry: left to right, wrapping onto a new row when the next one would
    not fit (text width estimated at 6.5 px a character at 11 px).

    >>> [row for _, row, _ in _legend_layout([Series("x" * 30, [], "#000")] * 3, 640)]
    [0, 0, 1]
    """
    out, x, row = [], float(MARGIN_LEFT), 0
    for s in series:
        entry = 34 + 6.5 * len(s.name)
        if x > MARGIN_LEFT and x + entry > width - MARGIN_RIGHT:
            x, row = float(MARGIN_LEFT), row + 1
        out.append((x, row, entry))
        x += entry
    return out


def line_chart_svg(series: list[Series], *, title: str, x_label: str = "step", y_label: str = "loss",
                   width: int = WIDTH, height: int = HEIGHT, standalone: bool = False) -> str:
    """An SVG line chart: white background, labelled axes with round ticks, a legend, one polyline per series.

    `standalone` adds the SVG namespace, which a file or a `data:` image needs and inline HTML does not. The y axis
    starts at 0 when every value is positive (losses), so two charts of similar runs are read on the same footing.
    """
    title = title if len(title) <= width // 8 else title[: width // 8 - 1] + "…"  # one line: a label may be long
    legend = _legend_layout(series, width)
    top = MARGIN_TOP + 16 * (max((row for _, row, _ in legend), default=0))
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - top - MARGIN_BOTTOM
    finite = [p for s in series for p in _finite(s.points)]
    ns = f' xmlns="{SVG_NS}"' if standalone else ""
    parts = [f'<svg{ns} width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="{BACKGROUND}"/>',
             f'<text x="{MARGIN_LEFT}" y="18" {FONT} font-size="14" font-weight="bold" fill="{INK}">'
             f'{html.escape(title)}</text>']
    if not finite:
        parts.append(f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" {FONT} font-size="13" fill="{INK}" '
                     'text-anchor="middle">no losses recorded</text></svg>')
        return "".join(parts)
    xs, ys = [p[0] for p in finite], [p[1] for p in finite]
    x_ticks = nice_ticks(min(0.0, min(xs)), max(xs))
    y_lo = 0.0 if min(ys) >= 0 else min(ys)
    y_ticks = nice_ticks(y_lo, max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return MARGIN_LEFT + (x - x0) / ((x1 - x0) or 1) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    for t in y_ticks:
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{py(t):.1f}" x2="{MARGIN_LEFT + plot_w}" y2="{py(t):.1f}" '
                     f'stroke="{GRID}" stroke-width="1"/>'
                     f'<text x="{MARGIN_LEFT - 6}" y="{py(t) + 4:.1f}" {FONT} font-size="11" fill="{INK}" '
                     f'text-anchor="end">{tick_label(t)}</text>')
    for t in x_ticks:
        parts.append(f'<line x1="{px(t):.1f}" y1="{top + plot_h}" x2="{px(t):.1f}" '
                     f'y2="{top + plot_h + 4}" stroke="{INK}" stroke-width="1"/>'
                     f'<text x="{px(t):.1f}" y="{top + plot_h + 17}" {FONT} font-size="11" fill="{INK}" '
                     f'text-anchor="middle">{tick_label(t)}</text>')
    parts.append(f'<polyline points="{MARGIN_LEFT},{top} {MARGIN_LEFT},{top + plot_h} '
                 f'{MARGIN_LEFT + plot_w},{top + plot_h}" fill="none" stroke="{INK}" stroke-width="1"/>')
    parts.append(f'<text x="{MARGIN_LEFT + plot_w / 2:.1f}" y="{height - 8}" {FONT} font-size="12" fill="{INK}" '
                 f'text-anchor="middle">{html.escape(x_label)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" {FONT} font-size="12" fill="{INK}" '
                 f'text-anchor="middle" transform="rotate(-90 14 {top + plot_h / 2:.1f})">'
                 f'{html.escape(y_label)}</text>')

    for s, (legend_x, row, _) in zip(series, legend, strict=True):
        width_px = 3 if s.bold else 1.5
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        opacity = "" if s.bold else ' stroke-opacity="0.55"'
        for segment in _segments(_thin(s.points)):
            coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in segment)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="{width_px}"'
                         f'{dash}{opacity} stroke-linejoin="round"/>')
            if s.bold:
                parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{s.colour}"/>'
                          for x, y in segment]
        y = 36 + 16 * row
        parts.append(f'<line x1="{legend_x:.1f}" y1="{y}" x2="{legend_x + 22:.1f}" y2="{y}" stroke="{s.colour}" '
                     f'stroke-width="{width_px}"{dash}{opacity}/>'
                     f'<text x="{legend_x + 27:.1f}" y="{y + 4}" {FONT} font-size="11" fill="{INK}">'
                     f'{html.escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_data_uri(svg: str) -> str:
    """A standalone SVG as a `data:` URI, for a Markdown image that needs no file beside it.

    >>> svg_data_uri("<svg/>")
    'data:image/svg+xml;base64,PHN2Zy8+'
    """
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
