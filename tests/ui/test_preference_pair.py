"""The preference-pair widget (ui/widgets/preference_pair.py): it names its model, runs DPO on the pair when the
button is pressed and shows the step-0 arithmetic, the last step worked out, the token tables and both charts;
changed inputs hide the old result; a pair the tokenizer cannot read is refused by name; a reward model's two
scores read as Bradley–Terry; its charts read in both themes; and render_for draws it for any model handed in."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from engine.post_training.preference import DpoExample, DpoStep, SequenceLogprob, TokenTerm
from tests.ui.conftest import no_errors, texts, widget_app
from tests.ui.test_chart_accessibility import BACKGROUNDS, NON_TEXT_CONTRAST, colours, contrast
from ui.text import escape_md
from ui.widgets import preference_pair


def test_the_button_runs_dpo_on_the_pair_and_shows_the_arithmetic(db) -> None:
    at = widget_app("preference_pair", {"steps": 5})
    no_errors(at)
    assert "reference model" in texts(at) and "trained on Tiny Shakespeare" in texts(at)
    assert "Press the button" in texts(at)
    at.button(key="harness-run").click().run()
    no_errors(at)
    shown = texts(at)
    assert "log 2 = **0.693**" in shown and "After step 5: margin = 0.1 ×" in shown
    assert "P(chosen beats rejected) went from 50% to" in shown
    assert len(at.get("plotly_chart")) == 2
    rows = at.dataframe[0].value  # the arithmetic, then each answer's tokens
    assert list(rows["quantity"])[-1] == "loss" and float(rows["step 0"].iloc[-1]) == 0.6931
    assert float(rows["after 5 steps"].iloc[-1]) < 0.6931
    tokens = at.dataframe[1].value
    assert "".join(tokens["token"]).replace("␣", " ") == "I love thee, sweet lady."
    # DPO's implicit rewards through the reward model's own formula: the same σ
    assert "DPO's implicit rewards after step 5" in shown

    at.run()  # a rerun redraws the kept result without pressing again
    assert "After step 5" in texts(at)
    at.select_slider(key="harness-beta").set_value(1.0).run()  # changed inputs: the old result is hidden
    assert "After step 5" not in texts(at) and "Press the button" in texts(at)


def test_a_pair_the_tokenizer_cannot_read_is_refused_by_name(db) -> None:
    at = widget_app("preference_pair", {"steps": 2})
    at.text_input(key="harness-chosen").input("I love thee ✨").run()
    at.button(key="harness-run").click().run()
    no_errors(at)
    warning = " ".join(w.value for w in at.warning)
    assert "cannot score this pair" in warning and "✨" in warning
    assert "Press the button" in texts(at)


def test_a_reward_models_two_scores_read_as_bradley_terry(db) -> None:
    at = widget_app("preference_pair", {"steps": 1})
    at.number_input(key="harness-rc").set_value(2.0).run()
    at.number_input(key="harness-rr").set_value(2.0).run()
    assert "**50.0%**" in texts(at)
    at.number_input(key="harness-rr").set_value(0.0).run()
    assert "**88.1%**" in texts(at)  # σ(2)


def _example() -> DpoExample:
    seq = SequenceLogprob([TokenTerm("a", -1.0)], -1.0, 1, 0)
    steps = [DpoStep(0, -1.0, -2.0, -1.0, -2.0, 0.0, 0.0, 0.0, 0.693, 0.5),
             DpoStep(1, -0.8, -2.5, -1.0, -2.0, 0.02, -0.05, 0.07, 0.66, 0.52)]
    return DpoExample(0.1, 1e-4, seq, seq, seq, seq, steps)


def test_its_charts_read_in_both_themes_and_have_a_text_version() -> None:
    for fig in (preference_pair.logprob_chart(_example()), preference_pair.margin_chart(_example())):
        spec = fig.to_plotly_json()
        assert spec["layout"]["xaxis"]["title"]["text"] and spec["layout"]["yaxis"]["title"]["text"]
        spec["layout"].pop("template", None)
        for where, colour in colours(spec):
            assert "textfont" not in where
            for background in BACKGROUNDS.values():
                assert contrast(colour, background) >= NON_TEXT_CONTRAST, (where, colour)
    assert preference_pair.chart_text(_example()).endswith("1: -0.80, -2.50, 0.070, 0.660.")
    json.dumps(preference_pair.arithmetic_rows(_example()))  # plain numbers and text for the table


def _tiny_model_page() -> None:
    import torch

    from course.widgets import PreferencePairParams
    from engine.transform.model import GPT, GPTConfig
    from engine.transform.tokenization import CharTokenizer
    from ui.widgets.preference_pair import render_for

    tok = CharTokenizer.from_text("abc \n:")
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=tok.vocab_size))
    params = PreferencePairParams(steps=3, prompt="a:\n", chosen="abc", rejected="cba")
    render_for(model, tok, "a tiny test model <b>", params, key="tiny")


def test_render_for_draws_it_for_any_model_handed_in() -> None:
    at = AppTest.from_function(_tiny_model_page, default_timeout=60).run()
    no_errors(at)
    assert escape_md("a tiny test model <b>") in texts(at)  # named, as text
    at.button(key="tiny-run").click().run()
    no_errors(at)
    assert "After step 3" in texts(at)
