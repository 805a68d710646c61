"""Every plotly chart the widgets draw reads in both themes: each axis has a title, and every colour the code sets
itself (the rest come from Streamlit's theme) stands out at least 3:1 against both the light and the dark
background (WCAG 1.4.11, non-text contrast). Text drawn in a chart takes the theme's text colour, never a fixed one.
Each chart has a text version beside it for screen readers (its `chart_text`, checked here on small inputs).

No Streamlit app runs here: the chart functions are plain functions of engine data.
"""

from __future__ import annotations

import pytest

from engine.cost.flops import compute_optimal as split_budget
from engine.cost.scaling import RungPoint, SweepView
from engine.load.reference import REFERENCE_DIR
from engine.load.weights import anatomy
from engine.look_inside.embeddings import Projection, TokenPoint
from engine.look_inside.groups import GROUPS
from engine.look_inside.inspection import AttentionView, ParamPart
from engine.look_inside.sampling import Candidate, NextToken
from engine.transform.bpe_trace import MergeStep
from engine.transform.descent import descend
from engine.transform.next_token import following_counts
from engine.transform.tokenization import CompressionRow
from ui.widgets import (
    attention_heatmap,
    bpe_trainer,
    checkpoint_anatomy,
    compute_optimal,
    counting_loss,
    descent_steps,
    embedding_map,
    model_vs_counts,
    next_char_counts,
    next_token_probs,
    parameter_breakdown,
    scaling_sweep,
    vocab_sweep,
)

BACKGROUNDS = {"light": "#ffffff", "dark": "#171614"}  # Streamlit's two theme backgrounds (.streamlit/config.toml)
NON_TEXT_CONTRAST = 3.0


def luminance(hex_colour: str) -> float:
    """WCAG relative luminance of `#rrggbb`.

    >>> round(luminance("#ffffff"), 3), round(luminance("#000000"), 3)
    (1.0, 0.0)
    """
    h = hex_colour.lstrip("#")
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours.

    >>> round(contrast("#ffffff", "#000000"), 1)
    21.0
    """
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


NAMED = {"gray": "#808080", "grey": "#808080"}


def colours(node, path: str = "") -> list[tuple[str, str]]:
    """(where, colour) for every colour the figure sets explicitly: any `color`/`line_color`/`marker_color` value."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            here = f"{path}.{k}"
            if k.endswith("color") and k != "colorscale":
                for c in (v if isinstance(v, list | tuple) else [v]):
                    if isinstance(c, str):
                        found.append((here, NAMED.get(c, c)))
            else:
                found += colours(v, here)
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            found += colours(v, f"{path}[{i}]")
    return found


def _attention():
    view = AttentionView(["a", "b", "c"], 0, 1, 1, [[[[1, 0, 0], [0.5, 0.5, 0], [0.7, 0.2, 0.1]]]])
    return attention_heatmap.chart(view, 0, 0)


def _merges():
    steps = [MergeStep(1, ("t", "h"), "th", 5, (1, 2), 256, 95), MergeStep(2, ("th", "e"), "the", 4, (256, 3), 257, 91)]
    return bpe_trainer.merges_chart(steps, 100, 1)


def _projection() -> Projection:
    points = tuple(TokenPoint(i, g.name[0], g.name, float(i), float(i % 3), float(i % 2)) for i, g in enumerate(GROUPS))
    return Projection(step=100, points=points, explained=(0.4, 0.3, 0.1), groups=tuple(g.name for g in GROUPS))


def _dist() -> NextToken:
    return NextToken(["a"], 0, 0.8, 1, None, [Candidate(1, "e", 0.6, 1.0), Candidate(2, "␣", 0.3, 0.0)], 1, 0.9, 0)


def _vocab_rows() -> list[CompressionRow]:
    return [CompressionRow("char", 65, None, 1000, 1.0, 1.0), CompressionRow("bpe", 300, 300, 700, 1.43, 1.43),
            CompressionRow("bpe", 1000, 1000, 500, 2.0, 2.0)]


def _sweep() -> SweepView:
    points = [RungPoint("tiny", 1000, 10_000, 6e7, 2.5), RungPoint("small", 4000, 10_000, 2.4e8, 2.2)]
    verify = RungPoint("check", 16_000, 10_000, 9.6e8, 2.0, is_verify=True)
    return SweepView(points, verify, None, None, [(6e7, 2.5), (9.6e8, 1.95)], 1.95, 2.5)


CHARTS = {
    "attention heatmap": _attention,
    "BPE merges": _merges,
    "checkpoint sizes": lambda: checkpoint_anatomy.size_chart(anatomy(REFERENCE_DIR)),
    "compute-optimal split": lambda: compute_optimal.chart(split_budget(1e21, 20), (1e6, 2e7)),
    "counting loss, surprise per character": lambda: counting_loss.surprise_chart(["h", "e"], [0.5, 2.3], [0.6, 0.1]),
    "descent steps": lambda: descent_steps.path_chart(descend(0.5)),
    "embedding map, 2-D": lambda: embedding_map.chart(_projection(), ((0, 9), (0, 2)), 2),
    "embedding map, 3-D": lambda: embedding_map.chart(_projection(), ((0, 9), (0, 2), (0, 1)), 3),
    "model against counts": lambda: model_vs_counts.chart([("e", 0.5, 0.4), ("a", 0.25, 0.3)]),
    "next-character counts": lambda: next_char_counts.chart(following_counts("tha the thi the", "th")),
    "next-token probabilities": lambda: next_token_probs.chart(_dist()),
    "parameter breakdown": lambda: parameter_breakdown.chart([ParamPart("attention", 64, ""), ParamPart("MLP", 128, "")]),
    "scaling sweep": lambda: scaling_sweep.sweep_chart(_sweep()),
    "vocabulary sweep": lambda: vocab_sweep.chart(_vocab_rows(), own=(500, 1.8)),
}


@pytest.mark.parametrize("name", list(CHARTS))
def test_every_axis_has_a_title(name):
    layout = CHARTS[name]().to_plotly_json()["layout"]
    axes = {k: v for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))}
    axes |= {f"scene.{k}": v for k, v in layout.get("scene", {}).items() if k.endswith("axis")}
    assert axes, f"{name}: no axes found"
    for axis, spec in axes.items():
        title = spec.get("title", {})
        assert (title.get("text") if isinstance(title, dict) else title), f"{name}: {axis} has no title"


@pytest.mark.parametrize("name", list(CHARTS))
def test_colours_set_in_code_read_on_both_backgrounds(name):
    fig = CHARTS[name]().to_plotly_json()
    fig["layout"].pop("template", None)  # plotly's default template: st.plotly_chart draws with Streamlit's theme
    for where, colour in colours(fig):
        assert "textfont" not in where, f"{name}: {where} fixes a text colour ({colour}); text takes the theme's"
        for theme, background in BACKGROUNDS.items():
            ratio = contrast(colour, background)
            assert ratio >= NON_TEXT_CONTRAST, f"{name}: {where} = {colour} is {ratio:.2f}:1 on the {theme} theme"


def test_every_explicit_palette_reads_on_both_backgrounds():
    """The named palettes too, not only the colours the small inputs above happened to draw."""
    palette = {f"embedding_map {g}": c for g, (c, _) in embedding_map.STYLE.items()}
    palette |= {"next_token_probs raw": next_token_probs.RAW_COLOUR, "next_token_probs kept": next_token_probs.KEPT_COLOUR,
                "model_vs_counts model": model_vs_counts.MODEL_COLOUR, "model_vs_counts text": model_vs_counts.TEXT_COLOUR,
                "vocab_sweep own": vocab_sweep.OWN_COLOUR}
    for name, colour in palette.items():
        for theme, background in BACKGROUNDS.items():
            assert contrast(colour, background) >= NON_TEXT_CONTRAST, f"{name} = {colour} on the {theme} theme"


def test_each_chart_has_its_text_version():
    """The sentences shown under the charts carry every bar or point the chart draws."""
    assert next_char_counts.chart_text(following_counts("tha the thi the", "th")) == (
        "Chart as text: e 2 times (50%), a 1 time (25%), i 1 time (25%).")
    assert "e 50% against 40%" in model_vs_counts.chart_text([("e", 0.5, 0.4)])
    assert next_token_probs.chart_text(_dist()).endswith("e 60% → 100%, ␣ 30% → removed.")
    assert parameter_breakdown.chart_text([ParamPart("attention", 64, ""), ParamPart("MLP", 192, "")]) == (
        "Chart as text: attention 64 (25%), MLP 192 (75%).")
    steps = [MergeStep(1, ("t", "h"), "th", 5, (1, 2), 256, 95)]
    assert "100 tokens before any merge, 95 after all 1 merges" in bpe_trainer.merges_text(steps, 100, 1)
    text = compute_optimal.chart_text(split_budget(1e21, 20), (1e6, 2e7))
    assert "your budget's split" in text and "your lesson-7 run" in text and "GPT-3" in text
    assert counting_loss.surprise_text([" ", "e"], [0.5, 2.3]) == "Chart as text, loss per character: 2·␣ 0.50, 3·e 2.30."
    path = descend(0.5, steps=3)
    assert descent_steps.path_text(path).count(";") == 3  # the start and three steps
