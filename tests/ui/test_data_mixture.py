"""Lesson 3's data mixture: the plan's arithmetic (shares, epochs, flags), what the reference model's mixture taught
it (its loss per corpus, and on its own writing), the charts in both themes, and the widget in AppTest."""

from __future__ import annotations

import functools
import math

import pytest

from engine.extract import corpus as engine_corpus
from engine.extract.mixture import plan_mixture, repetition_level
from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.look_inside.domain_loss import domain_losses, held_out_slice, ids_loss, readable, self_loss
from engine.transform.tokenization import CharTokenizer
from tests.ui.conftest import texts, widget_app
from tests.ui.test_chart_accessibility import BACKGROUNDS, NON_TEXT_CONTRAST, colours, contrast
from ui.widgets import data_mixture


@functools.lru_cache(maxsize=1)
def _reference():
    step = checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"]
    return checkpoint.load_timeline_model(REFERENCE_DIR, step)


@functools.lru_cache(maxsize=1)
def _corpora() -> dict[str, str]:
    return {c.id: engine_corpus.load_corpus(c.id) for c in engine_corpus.list_corpora()}


# ---- the plan -----------------------------------------------------------------------------------------------------


def test_a_small_good_source_at_ten_percent_of_a_big_budget_is_over_repeated():
    """Worked by hand: 10% of 100M tokens is 10M tokens drawn from a 1M-token source, so it is read 10 times."""
    plan = plan_mixture({"web": 500_000_000, "wiki": 1_000_000}, {"web": 9, "wiki": 1}, budget_tokens=100_000_000)
    web, wiki = plan.sources
    assert (web.tokens, wiki.tokens) == (90_000_000, 10_000_000)
    assert wiki.epochs == 10.0 and web.epochs == pytest.approx(0.18)
    assert (web.level, wiki.level) == ("fresh", "over") and plan.flagged == [wiki]
    assert wiki.boost == pytest.approx(0.1 / (1 / 501))  # upsampled about 50 times over its natural share
    assert plan.unique_tokens == 90_000_000 + 1_000_000 and plan.repeated_tokens == 9_000_000
    assert "10.0 times" in wiki.note and "memorise" in wiki.note


@pytest.mark.parametrize("budget", [100_000, 1_234_567, 99_999_999])
def test_shares_add_up_to_the_budget_and_epochs_are_tokens_over_size(budget):
    sizes = {"a": 1_115_394, "b": 470_194, "c": 3_823_524, "d": 1_001}
    weights = {"a": 3, "b": 1, "c": 2.5, "d": 0.5}
    plan = plan_mixture(sizes, weights, budget)
    assert sum(s.tokens for s in plan.sources) == budget
    assert sum(s.share for s in plan.sources) == pytest.approx(1.0)
    assert sum(s.natural_share for s in plan.sources) == pytest.approx(1.0)
    for s in plan.sources:
        assert abs(s.tokens - budget * weights[s.name] / 7) <= 1  # whole tokens, within one of the exact share
        assert s.epochs == s.tokens / sizes[s.name]
        assert s.level == repetition_level(s.epochs) and s.flagged == (s.epochs > 4)
    assert plan.unique_tokens == sum(min(s.tokens, s.size) for s in plan.sources)


def test_weights_at_the_natural_shares_read_every_source_equally_often():
    sizes = {"a": 3_000, "b": 1_000}
    plan = plan_mixture(sizes, {"a": 3_000, "b": 1_000}, 8_000)
    assert [s.epochs for s in plan.sources] == [2.0, 2.0] and [s.boost for s in plan.sources] == [1.0, 1.0]


def test_levels_follow_the_published_thresholds():
    assert [repetition_level(e) for e in (0, 0.5, 1, 1.01, 4, 4.01, 16, 16.01)] == [
        "unused", "fresh", "fresh", "repeated", "repeated", "over", "over", "far_over"]
    plan = plan_mixture({"a": 1_000, "b": 1_000}, {"a": 1, "b": 0}, 20_000)
    assert [s.level for s in plan.sources] == ["far_over", "unused"] and plan.sources[1].tokens == 0
    assert [s.natural_share for s in plan.sources] == [1.0, 0.0]  # natural shares count only the text mixed


@pytest.mark.parametrize("weights, message", [
    ({"a": 0, "b": 0}, "at least one source"),
    ({"a": -1, "b": 2}, "negative"),
    ({"a": 1, "z": 1}, "not in the mixture"),
])
def test_impossible_mixtures_are_refused_in_words(weights, message):
    with pytest.raises(ValueError, match=message):
        plan_mixture({"a": 10, "b": 10}, weights, 100)


# ---- what the mixture teaches ---------------------------------------------------------------------------------


def test_unreadable_characters_are_counted_and_left_out():
    tok = CharTokenizer.from_text("abc \n")
    assert readable(tok, "a_b(c)_") == ("abc", 4, "_()")
    assert held_out_slice("0123456789" * 10, chars=5) == "01234"  # the start of the last tenth
    model, _ = _reference()
    [nothing] = domain_losses(model, tok, {"symbols": "#" * 200})
    assert nothing.tokens == 0 and math.isnan(nothing.loss) and nothing.unknown == 20


def test_the_shakespeare_model_is_best_at_shakespeare_and_worst_at_code():
    model, tok = _reference()
    losses = {d.name: d for d in domain_losses(model, tok, _corpora(), chars=3_000)}
    shakespeare, code, web = losses["tinyshakespeare"], losses["python_stdlib"], losses["web_crawl"]
    assert shakespeare.unknown == 0 and code.unknown > 100 and "_" in code.unknown_chars
    assert shakespeare.loss < web.loss < code.loss < math.log(tok.vocab_size)
    assert shakespeare.tokens == 3_000 - 3_000 % model.config.block_size  # whole windows of block_size
    assert shakespeare.loss < 1.8 and code.loss > 3.0


def test_ids_loss_matches_a_hand_computed_mean_of_minus_ln_p():
    import torch

    model, tok = _reference()
    ids = tok.encode("ROMEO:\nWhat light")
    loss, n = ids_loss(model, ids)
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids[:-1]]))
    logp = torch.log_softmax(logits[0], dim=-1)  # (T, V)
    by_hand = -sum(float(logp[t, ids[t + 1]]) for t in range(len(ids) - 1)) / (len(ids) - 1)
    assert n == len(ids) - 1 and loss == pytest.approx(by_hand, abs=1e-4)


def test_the_model_finds_its_own_writing_easier_than_real_text():
    model, tok = _reference()
    own = self_loss(model, tok, temperature=0.8, n_tokens=400, seed=0)
    [real] = domain_losses(model, tok, {"tinyshakespeare": _corpora()["tinyshakespeare"]}, chars=3_000)
    assert own.loss < real.loss - 0.1
    assert own.tokens == 384 and len(own.text) == 400  # one character per token; whole windows scored
    assert self_loss(model, tok, temperature=0.8, n_tokens=400, seed=0).text == own.text  # seeded: the same text


# ---- the charts, in both themes -------------------------------------------------------------------------------


def _figures():
    titles = {"a": "Web", "b": "Books"}
    plan = plan_mixture({"a": 9_000, "b": 1_000}, {"a": 1, "b": 1}, 10_000)
    model, tok = _reference()
    losses = domain_losses(model, tok, {"a": "To be, or not to be " * 20, "b": "x = 1\n" * 60}, chars=200)
    own = self_loss(model, tok, n_tokens=80)
    return [data_mixture.epochs_chart(plan, titles), data_mixture.loss_chart(losses, own, titles, tok.vocab_size)]


def test_charts_have_axis_titles_and_colours_that_read_on_both_backgrounds():
    for fig in _figures():
        spec = fig.to_plotly_json()
        for axis in ("xaxis", "yaxis"):
            assert spec["layout"][axis]["title"]["text"]
        spec["layout"].pop("template", None)
        found = colours(spec)
        assert found
        for where, colour in found:
            assert "textfont" not in where
            for background in BACKGROUNDS.values():
                assert contrast(colour, background) >= NON_TEXT_CONTRAST, (where, colour)


# ---- the widget -----------------------------------------------------------------------------------------------


def _sizes() -> dict[str, int]:
    return {cid: len(text) for cid, text in _corpora().items()}


def test_widget_shows_the_plan_and_follows_its_sliders(db):
    at = widget_app("data_mixture", {"budget_tokens": 2_000_000})
    assert not at.exception and not at.error
    sizes = _sizes()
    plan = plan_mixture(sizes, {cid: 1 for cid in sizes}, 2_000_000)
    shown = texts(at)
    assert data_mixture.summary(plan) in shown
    assert f"| {plan.sources[1].tokens:,} | {plan.sources[1].epochs:.2f} |" in shown  # the code corpus's row
    assert not at.warning  # equal weights on 2M tokens: nothing read more than 4 times

    at.slider(key="harness-weight-python_stdlib").set_value(10).run()
    at.select_slider(key="harness-budget").set_value(20_000_000).run()
    plan = plan_mixture(sizes, {"tinyshakespeare": 1, "python_stdlib": 10, "web_crawl": 1}, 20_000_000)
    code = plan.sources[1]
    shown = texts(at)
    assert code.level == "far_over" and f"| {code.tokens:,} | {code.epochs:.2f} | ⛔ far too many |" in shown
    assert data_mixture.summary(plan) in shown and f"| {code.share:.0%} (up ×{code.boost:.1f}) |" in shown
    assert [w.value for w in at.warning] == [f"**Python standard library \\(code\\)** is {code.note}."]
    assert not at.exception


def test_widget_measures_the_model_on_each_text_when_asked(db):
    at = widget_app("data_mixture")
    assert "100% Tiny Shakespeare" in texts(at) and not at.get("plotly_chart")[1:]  # only the epochs chart
    at.button(key="harness-measure").click().run()
    assert not at.exception and not at.error
    shown = texts(at)
    assert "It does best on **Tiny Shakespeare**" in shown and "worst on **Python standard library" in shown
    assert "no token for" in shown and "Chart as text, loss on each text" in shown
    assert len(at.get("plotly_chart")) == 2 and len(at.metric) == 2
    real, own = (float(m.value) for m in at.metric)
    assert own < real  # at the default temperature its own writing is easier than real text
    at.slider(key="harness-weight-web_crawl").set_value(0).run()  # moving the mixture keeps the results shown
    assert not at.exception and len(at.metric) == 2 and at.metric[1].label == "Loss on its own writing"


def test_the_learners_upload_joins_the_mixture_and_is_measured(db, tmp_path, monkeypatch):
    from engine.extract.uploads import save_upload
    from ui.learner_corpus import upload_folder
    from ui.session import store

    monkeypatch.setenv("LLM_COURSE_UPLOADS", str(tmp_path / "uploads"))
    text = "Grüße aus München: ein kurzer Text über Bären und Äpfel, mit Umlauten. " * 40
    saved = save_upload("meine notizen.txt", text, upload_folder(store().get_or_create_learner("Guest").id))
    at = widget_app("data_mixture")
    slider = at.slider(key=f"harness-weight-{saved.id}")
    assert slider.value == 1 and f"{len(text):,} characters" in slider.help
    at.slider(key="harness-weight-web_crawl").set_value(0).run()
    sizes = _sizes() | {saved.id: len(text)}
    plan = plan_mixture(sizes, {"tinyshakespeare": 1, "python_stdlib": 1, "web_crawl": 0, saved.id: 1}, 2_000_000)
    mine = plan.sources[-1]
    assert mine.level == "far_over" and f"| {mine.tokens:,} | {mine.epochs:.2f} | ⛔ far too many |" in texts(at)
    at.button(key="harness-measure").click().run()
    assert not at.exception and not at.error
    assert "meine notizen" in texts(at) and "ü" in texts(at)  # its umlauts: characters the model cannot read
