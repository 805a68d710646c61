"""Loss curves that redraw every second while a run trains, drawn with Apache ECharts (`st.echarts_chart`).

Every other chart in the course is plotly. These are not, because of what a redraw costs on the machine that is
training at the same time. Streamlit 1.67 identifies a plotly chart by a hash of its whole figure, so a figure
whose data changed is a new element: the browser tears the chart down and builds it again, every second, and
because the two training threads wait for each other, every millisecond the browser takes from one of them is a
millisecond of training lost. A keyed `st.echarts_chart` keeps its chart and swaps only the data, a fraction of
the cost (docs/training-notes.md measures both). ECharts ships inside Streamlit's frontend, so this adds no
dependency, and with `theme="streamlit"` it follows the light or dark theme.

`loss_chart_spec` is plain data (an ECharts option dict), so tests can read what would be drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

HEIGHT = 340
# Colours that read on both the light and the dark theme (the theme's own palette starts with two blues, too close
# to tell a faint line from a bold one): strong colours for validation curves, a quiet grey for per-batch loss (and
# the dotted landmark lines). Each keeps WCAG's 3:1 for graphics against both backgrounds, white and #171614
# (tests/ui/test_live_chart.py checks).
BOLD_COLOURS = ("#2e86de", "#d35400", "#239b56", "#a569bd")
FAINT_COLOUR = "#8a94a6"


@dataclass(frozen=True)
class Curve:
    """One line on the chart. `bold`: thick with a marker per point (validation estimates); otherwise a thin,
    faint line without markers (the noisy per-batch training loss)."""

    name: str
    points: list[tuple[int, float]]
    bold: bool = False


def _y(value: float, log_axis: bool) -> float | str:
    """A value ECharts can draw: rounded for small JSON and readable tooltips; '-' (a gap) where there is no
    number to draw (NaN or infinite after a divergence, or not positive on a log axis)."""
    if not math.isfinite(value) or (log_axis and value <= 0):
        return "-"
    return round(value, 4)


def loss_chart_spec(curves: list[Curve], *, y_title: str, guides: list[tuple[float, str]] | None = None,
                    log_axis: bool = False, y_max: float | None = None, x_title: str = "step") -> dict:
    """The ECharts option for loss curves over training steps.

    `guides`: (value, label) pairs drawn as dotted horizontal lines, e.g. the loss of random guessing and of the
    counting models a transformer has to beat (engine.transform.baseline). `log_axis`: a
    logarithmic y axis, which shows a divergence's explosion instead of clipping it. `y_max`: fix the top of the
    y axis (linear axis only), so the axis does not jump about as new points arrive.

    >>> spec = loss_chart_spec([Curve("val", [(0, 4.2), (50, 2.5)], bold=True)], y_title="loss")
    >>> spec["series"][0]["data"]
    [[0, 4.2], [50, 2.5]]
    """
    series = []
    bold_colours = iter(BOLD_COLOURS * len(curves))
    for curve in curves:
        line = {"type": "line", "name": curve.name, "data": [[x, _y(y, log_axis)] for x, y in curve.points],
                "connectNulls": False}
        if curve.bold:
            colour = next(bold_colours)
            line.update(symbol="circle", symbolSize=7, showSymbol=True, lineStyle={"width": 3, "color": colour},
                        itemStyle={"color": colour})
        else:
            line.update(showSymbol=False, lineStyle={"width": 1.5, "color": FAINT_COLOUR},
                        itemStyle={"color": FAINT_COLOUR})
        series.append(line)
    if guides and series:
        series[0]["markLine"] = {
            "silent": True, "symbol": "none", "animation": False,
            "lineStyle": {"type": "dotted", "width": 1.5},
            "label": {"position": "insideEndTop"},
            "data": [{"yAxis": round(value, 4), "label": {"formatter": label}} for value, label in guides],
        }
    y_axis: dict = {"type": "log" if log_axis else "value", "name": y_title, "nameLocation": "middle",
                    "nameGap": 42, "scale": log_axis}
    if not log_axis:
        y_axis["min"] = 0
        if y_max is not None:
            y_axis["max"] = round(y_max, 2)
    return {
        "animation": False,  # redrawn every second: an entry animation each time would only flicker and cost CPU
        "grid": {"left": 64, "right": 24, "top": 44, "bottom": 48},
        "legend": {"top": 0, "left": 0},
        "tooltip": {"trigger": "axis", "valueFormatter": "%.3f"},
        "xAxis": {"type": "value", "name": x_title, "nameLocation": "middle", "nameGap": 28, "min": 0,
                  "max": "dataMax", "minInterval": 1},  # steps are whole numbers
        "yAxis": y_axis,
        "series": series,
    }


def draw(spec: dict, key: str, alt: str, height: int = HEIGHT) -> None:
    """Draw (or update in place: the key keeps the same chart across reruns) a chart built by loss_chart_spec."""
    st.echarts_chart(spec, key=key, height=height, alt=alt)
