"""Lesson 8's evaluation widget: bits per byte worked by hand, the benchmark's construction and scoring on the
reference model, contamination found with lesson 3's shingles, and the widget in AppTest."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from engine.load import checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.look_inside import evaluation as ev
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer, train_bpe
from tests.ui.conftest import no_errors, texts, widget_app
from ui.learner_corpus import bundled_text

SHAKESPEARE_TAIL = 60_000  # characters of the corpus's end used by the fast tests (all of it held out)


@functools.cache
def _reference():
    return checkpoint.load_timeline_model(REFERENCE_DIR, checkpoint.list_timeline(REFERENCE_DIR)[-1]["step"])


@functools.cache
def _val() -> str:
    return ev.split(bundled_text("tinyshakespeare"))[1]


def _uniform(vocab: int) -> GPT:
    """A model whose every prediction is uniform over its vocabulary: loss ln(vocab) on any token."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=vocab, n_layer=1, n_head=1, n_embd=8))
    with torch.no_grad():
        model.lm_head.weight.zero_()
    return model


def test_bits_per_byte_of_a_character_model_on_ascii_is_its_bits_per_character():
    text = "to be, or not to be: that is the question. " * 5
    tok = CharTokenizer.from_text(text)
    result = ev.bits_per_byte(_uniform(tok.vocab_size), tok, text)
    assert result.bytes == result.tokens  # one byte per character, one character per token
    assert result.loss == pytest.approx(math.log(tok.vocab_size), rel=1e-5)
    assert result.bits_per_byte == pytest.approx(math.log2(tok.vocab_size), rel=1e-5)  # bits per character


def test_bpe_tokens_cover_more_bytes_and_bits_per_byte_divides_them_out():
    text = "to be, or not to be: that is the question, whether tis nobler in the mind to suffer. " * 20
    tok = train_bpe(text, 300)
    result = ev.bits_per_byte(_uniform(tok.vocab_size), tok, text)
    ids = tok.encode(text)
    covered = len(tok.decode(ids[: result.tokens + 1]).encode()) - len(tok.decode(ids[:1]).encode())
    assert result.bytes == covered and result.bytes_per_token > 2
    # uniform guessing costs log2(V) bits per token, spread over the bytes each token covers
    assert result.bits_per_byte == pytest.approx(math.log2(tok.vocab_size) / result.bytes_per_token, rel=1e-5)


def test_benchmark_items_hold_four_endings_the_true_one_among_them_and_repeat_by_seed():
    text = _val()[:SHAKESPEARE_TAIL]
    questions = ev.choice_benchmark(text, 20, seed=3)
    assert len(questions) == 20
    for q in questions:
        assert len(q.endings) == ev.CHOICES == len(set(q.endings))
        assert text[q.start:].startswith(q.context + q.endings[q.answer])  # the true ending really followed
        assert q.context[-1].isspace() and not q.endings[q.answer][0].isspace()  # cut at a word start
    assert len({q.answer for q in questions}) > 1  # the true ending is not always in the same place
    assert ev.choice_benchmark(text, 20, seed=3) == questions
    assert ev.choice_benchmark(text, 20, seed=4) != questions


def test_reference_model_beats_chance_on_held_out_items():
    model, tok = _reference()
    score = ev.score_choices(model, tok, ev.choice_benchmark(_val(), 100, seed=0))
    assert len(score.items) == 100 and score.skipped == 0
    assert score.accuracy > 0.33 and score.accuracy_norm > 0.33  # chance is 0.25; 0.33 is 2 standard errors above
    # an untrained model's probabilities say nothing about which ending fits
    untrained, _ = checkpoint.load_timeline_model(REFERENCE_DIR, 0)
    assert ev.score_choices(untrained, tok, ev.choice_benchmark(_val(), 100, seed=0)).accuracy_norm < score.accuracy_norm


def test_scores_are_the_sum_of_log_probabilities_of_the_ending_tokens():
    model, tok = _reference()
    q = ev.choice_benchmark(_val()[:SHAKESPEARE_TAIL], 1, seed=5)[0]
    item = ev.score_choices(model, tok, [q]).items[0]
    ending = q.endings[0]
    ids = tok.encode(q.context + ending)[-(model.config.block_size + 1):]
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids[:-1]]))  # (1, T, V)
    logp = torch.log_softmax(logits[0], dim=-1)  # (T, V)
    by_hand = sum(float(logp[t, ids[t + 1]]) for t in range(len(ids) - 1 - len(ending), len(ids) - 1))
    assert item.loglik[0] == pytest.approx(by_hand, abs=1e-3)
    assert item.per_char[0] == pytest.approx(by_hand / len(ending), abs=1e-4)


def test_contamination_finds_every_leaked_item_and_no_clean_one():
    text = bundled_text("tinyshakespeare")
    train, val = ev.split(text)
    clean = ev.contamination(ev.choice_benchmark(val, 40, seed=0), train)
    leaked = ev.contamination(ev.choice_benchmark(train, 40, seed=1), train)
    assert all(leaked.found) and min(leaked.overlap) == 1.0
    assert not any(clean.found)


def test_widget_runs_the_benchmark_on_the_reference_model(db):
    at = widget_app("model_eval", {"questions": 20})
    no_errors(at)
    shown = texts(at)
    assert "Bits per byte" in shown and "Run the benchmark" in at.button(key="harness-run").label
    assert "Contamination" not in shown  # nothing scored before the button
    at.button(key="harness-run").click().run()
    no_errors(at)
    shown = texts(at)
    assert "Contamination" in shown and "20 of 20" in shown  # every leaked item found
    assert "✅ what really followed" in shown
    assert any(m.label == "Chance (a random pick)" for m in at.metric)
    at.number_input(key="harness-item").set_value(2).run()  # browse to another question: no rerun of the model
    no_errors(at)
    assert "Is a lower loss a more useful model?" in texts(at) and "From step" in texts(at)
