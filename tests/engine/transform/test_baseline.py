"""engine.transform.baseline: the counting models' losses, the landmarks the lessons quote and the charts draw."""

from __future__ import annotations

import json
import math

import torch

from engine.extract.bundled import read_text
from engine.transform.baseline import (
    LANDMARKS_FILE,
    count_losses,
    fit_counts,
    read_landmarks,
    save_landmarks,
    surprise_line,
)
from engine.transform.data import TextDataset
from engine.transform.tokenization import CharTokenizer


def test_shakespeare_landmarks_are_the_ones_the_lessons_quote():
    """Lessons 2 and 7 say: random guessing 4.17, character counts about 3.3, character pairs about 2.5."""
    text = read_text("tinyshakespeare")
    tok = CharTokenizer.from_text(text)
    data = TextDataset(text, tok)
    losses = count_losses(data.train, data.val, tok.vocab_size)
    assert round(losses.uniform, 2) == 4.17
    assert 3.25 <= losses.counts <= 3.45
    assert 2.4 <= losses.pairs <= 2.6


def test_a_pairs_model_gives_every_held_out_pair_some_probability():
    model = fit_counts(torch.tensor([0, 1] * 20), vocab_size=3)
    assert model.bigram is not None and torch.allclose(model.bigram.sum(dim=1), torch.ones(3, dtype=torch.float64))
    assert (model.bigram > 0).all()  # a pair never seen in training (2 -> 2) still has a little probability


def test_surprise_is_minus_log_p_and_averages_to_the_loss():
    model = fit_counts(torch.tensor([0, 1, 2] * 30), vocab_size=3)
    rows = surprise_line(model, [0, 1, 2, 0], list("abca"))
    assert [r.char for r in rows] == ["b", "c", "a"] and [r.previous for r in rows] == ["a", "b", "c"]
    assert all(math.isclose(r.loss, -math.log(r.p)) for r in rows)


def test_landmarks_saved_once_and_read_back(tmp_path):
    ids = torch.tensor([0, 1, 2, 3] * 40)
    save_landmarks(tmp_path, ids[:120], ids[120:], 4, "token")
    lines = read_landmarks(tmp_path)
    assert [label.split(":")[0] for _, label in lines] == ["random guessing", "token counts", "token pairs"]
    first = (tmp_path / LANDMARKS_FILE).read_text()
    save_landmarks(tmp_path, ids[:10], ids[10:20], 4, "token")  # a resumed run keeps the file it had
    assert (tmp_path / LANDMARKS_FILE).read_text() == first


def test_a_missing_or_damaged_file_reads_as_no_landmarks(tmp_path):
    assert read_landmarks(tmp_path) == []
    (tmp_path / LANDMARKS_FILE).write_text("{not json")
    assert read_landmarks(tmp_path) == []
    (tmp_path / LANDMARKS_FILE).write_text(json.dumps([{"loss": "x"}]))
    assert read_landmarks(tmp_path) == []
