"""engine.look_inside.embeddings and engine.look_inside.groups: the token map, its stable axes, neighbours, groups, table size."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench import embeddings as bench_embeddings
from bench import report as bench_report
from engine.load import checkpoint
from engine.look_inside import embeddings
from engine.look_inside.embeddings import (
    explained_variance,
    fit_axes,
    nearest_neighbours,
    project,
    project_table,
    run_neighbours,
    run_projection,
    run_table,
    run_table_size,
    table_size,
)
from engine.look_inside.groups import GROUP_NAMES, GROUPS, token_group, token_label
from engine.train.config import PRESETS
from engine.train.job import run_job
from engine.transform.tokenization import CharTokenizer, train_bpe

TEXT = "hello world, 42 times!\nHELLO\tagain"
TOKENIZER = CharTokenizer.from_text(TEXT)
TEXTS = [TOKENIZER.id_to_token(i) for i in range(TOKENIZER.vocab_size)]


def structured_table(v: int = len(TEXTS), c: int = 16, seed: int = 0) -> torch.Tensor:
    """A (V, C) table whose principal axes are well separated (spreads 5, 3, 2, then 0.5): PCA's axes are then
    well defined, as a trained table's are, unlike an isotropic random one's."""
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor([5.0, 3.0, 2.0] + [0.5] * (c - 3))  # (C,)
    q, _ = torch.linalg.qr(torch.randn(c, c, generator=g, dtype=torch.float64))  # (C, C) a random basis
    return (torch.randn(v, c, generator=g, dtype=torch.float64) * scales) @ q.T  # (V, C)


def coords(p: embeddings.Projection) -> torch.Tensor:
    return torch.tensor([[pt.x, pt.y, pt.z] for pt in p.points])  # (V, 3)


# ---- projection ----------------------------------------------------------------------------------------------


def test_projection_is_reproducible() -> None:
    table = structured_table()
    assert project_table(table, TEXTS) == project_table(table.clone(), TEXTS)
    assert project_table(table.float(), TEXTS, dims=2) == project_table(table.float(), TEXTS, dims=2)


def test_points_carry_id_label_group_and_2d_has_no_z() -> None:
    m = project_table(structured_table(), TEXTS, dims=2)
    assert [p.id for p in m.points] == list(range(len(TEXTS)))
    space = TOKENIZER.encode(" ")[0]
    assert (m.points[space].label, m.points[space].group) == ("␣", "whitespace")
    assert all(p.z is None for p in m.points) and len(m.explained) == 2
    assert set(m.groups) == {p.group for p in m.points} and set(m.groups) <= set(GROUP_NAMES)


def test_explained_variance_is_a_fraction_summing_to_at_most_one() -> None:
    table = structured_table()
    axes = fit_axes(table, 3)
    own = explained_variance(table, axes)
    assert all(0 <= f <= 1 for f in own) and sum(own) <= 1 + 1e-9
    assert own == sorted(own, reverse=True) and sum(own) > 0.8  # the three spread axes hold most of it
    other = explained_variance(torch.randn(len(TEXTS), 16, dtype=torch.float64), axes)  # not the fitted table
    assert all(0 <= f <= 1 for f in other) and sum(other) <= 1 + 1e-9


def test_a_small_shift_moves_points_a_little_and_keeps_the_axis_signs() -> None:
    first = structured_table()
    g = torch.Generator().manual_seed(1)
    second = first + 0.05 * torch.randn(first.shape, generator=g, dtype=torch.float64)  # "checkpoint 2"
    a1, a2 = fit_axes(first, 3), fit_axes(second, 3)
    assert (a1.components * a2.components).sum(dim=1).min() > 0.95  # same axes, same direction (no flip)
    moved = (project(second, a2) - project(first, a2)).norm(dim=1)  # (V,) both on checkpoint 2's axes
    spread = project(second, a2).norm(dim=1).max()
    assert moved.max() < 0.1 * spread


def test_a_rotated_table_gives_the_same_map() -> None:
    """Only the geometry of the vectors matters, not the basis the model happens to store them in."""
    table = structured_table()
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    a, b = project_table(table, TEXTS), project_table(table @ q, TEXTS)
    assert torch.allclose(coords(a), coords(b), atol=1e-9)
    assert a.explained == pytest.approx(b.explained)


def test_axis_signs_follow_the_rule_the_furthest_token_is_positive() -> None:
    table = structured_table()
    scores = project(table, fit_axes(table, 3))  # (V, 3)
    far = scores.abs().argmax(dim=0)
    assert (scores[far, torch.arange(3)] > 0).all()
    mirrored = project(-table, fit_axes(-table, 3))  # every vector negated: the rule flips the axes back
    assert torch.allclose(mirrored, scores, atol=1e-9)


def test_fewer_dimensions_than_axes_and_bad_input() -> None:
    m = project_table(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5]]), ["a", "b", "c"])
    assert all(p.z == 0.0 for p in m.points) and m.explained[2] == 0.0
    with pytest.raises(ValueError, match="2 or 3"):
        project_table(structured_table(), TEXTS, dims=4)
    with pytest.raises(ValueError, match="rows"):
        project_table(structured_table(), TEXTS[:-1])


# ---- neighbours ----------------------------------------------------------------------------------------------


def test_nearest_neighbours_by_cosine() -> None:
    table = torch.tensor([[1.0, 0.0, 0.0], [10.0, 1.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.05, 0.0]])  # a ~ b (lengths differ)
    got = nearest_neighbours(table, ["a", "b", "c", "d"], 0, k=3)
    assert [n.label for n in got] == ["b", "c", "d"]
    assert got[0].similarity == pytest.approx(10 / math.sqrt(101))
    assert got[2].similarity < 0
    assert [n.label for n in nearest_neighbours(table, ["a", "b", "c", "d"], 2, k=1)] == ["b"]
    assert all(n.id != 0 for n in nearest_neighbours(table, ["a", "b", "c", "d"], 0, k=10))  # never itself
    with pytest.raises(ValueError):
        nearest_neighbours(table, ["a", "b", "c", "d"], 4)


# ---- groups and labels ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "group"),
    [("a", "vowel"), ("u", "vowel"), ("ü", "vowel"), ("z", "consonant"), ("Q", "upper"), ("E", "upper"),
     ("0", "digit"), (";", "punctuation"), ("$", "punctuation"), ("'", "punctuation"), (" ", "whitespace"),
     ("\n", "whitespace"), ("\t", "whitespace"), ("日", "other"), ("🙂", "punctuation"),
     (" the", "word"), ("ĠKing", "word"), ("the", "piece"), ("ing", "piece"), (" 1599", "digit"),
     (" ,", "punctuation"), ("...", "punctuation"), ("  ", "whitespace"), ("\n\n", "whitespace"),
     ("a1", "other"), ("<0xF0><0x9F>", "other"), ("", "other")],
)
def test_token_group(text: str, group: str) -> None:
    assert token_group(text) == group


def test_groups_of_a_real_bpe_vocabulary(small_text: str) -> None:
    tok = train_bpe(small_text, vocab_size=400)
    groups = {tok.id_to_token(i): token_group(tok.id_to_token(i)) for i in range(tok.vocab_size)}
    assert set(groups.values()) <= set(GROUP_NAMES)
    assert groups[" the"] == "word" and groups["e"] == "vowel"
    assert "piece" in groups.values() and "punctuation" in groups.values()


def test_group_list_and_labels() -> None:
    assert len(GROUP_NAMES) == len(set(GROUP_NAMES)) == len(GROUPS)
    assert {"vowel", "consonant", "digit", "punctuation", "upper", "whitespace", "word", "piece"} <= set(GROUP_NAMES)
    colours = {"red", "green", "blue", "yellow", "orange", "purple", "grey", "gray"}
    assert not any(colours & set(re.findall(r"[a-z]+", (g.label + " " + g.description).lower())) for g in GROUPS)
    assert [token_label(t) for t in [" ", "\n", "\t", " of\n"]] == ["␣", "⏎", "⇥", "␣of⏎"]


# ---- a run's timeline ----------------------------------------------------------------------------------------


def save_snapshot(run_dir: Path, step: int, table: torch.Tensor) -> None:
    payload = {"model": {embeddings.WTE_KEY: table.float()}, "tokenizer": TOKENIZER.to_dict(), "step": step}
    checkpoint.save_timeline_entry(run_dir, payload, {"step": step, "train_loss": None, "val_loss": None})


def test_run_projection_uses_one_set_of_axes_and_is_cached(tmp_path: Path) -> None:
    first = structured_table()
    second = first + 0.05 * torch.randn(first.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    save_snapshot(tmp_path, 0, first)
    save_snapshot(tmp_path, 10, second)
    rp = run_projection(tmp_path)
    assert rp.steps == (0, 10) and rp.fit_step == 10
    assert rp.frame(10) == project_table(second.float(), TEXTS, step=10)  # the latest, on its own axes
    assert rp.frame(0) == project_table(first.float(), TEXTS, fit_axes(second.float()), step=0)  # on the same axes
    moved = (coords(rp.frame(10)) - coords(rp.frame(0))).norm(dim=1)
    assert moved.max() < 0.1 * coords(rp.frame(10)).norm(dim=1).max()
    for axis, (lo, hi) in zip("xyz", rp.bounds, strict=True):
        values = [getattr(p, axis) for f in rp.frames.values() for p in f.points]
        assert lo == min(values) and hi == max(values)
    assert run_projection(tmp_path) is rp  # scrubbing: the cached answer

    save_snapshot(tmp_path, 20, second * 2)  # the timeline grows: a new answer, fitted on the new latest
    rp2 = run_projection(tmp_path)
    assert rp2 is not rp and rp2.steps == (0, 10, 20) and rp2.fit_step == 20


def test_run_projection_of_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no timeline"):
        run_projection(tmp_path)


def test_a_real_tiny_run_has_a_map_at_every_timeline_step(tmp_path: Path, small_text: str) -> None:
    run_dir = tmp_path / "run"
    status, _, _ = run_job(replace(PRESETS["tiny"], max_steps=60), small_text, None, None, run_dir)
    assert status == "finished"
    steps = [e["step"] for e in checkpoint.list_timeline(run_dir)]
    assert len(steps) >= 2 and steps[0] == 0 and steps[-1] == 60
    rp = run_projection(run_dir, dims=2)
    assert list(rp.steps) == steps and rp.fit_step == 60
    model, tok = checkpoint.load_timeline_model(run_dir, 60)
    for step in steps:
        frame = rp.frame(step)
        assert frame.step == step and len(frame.points) == tok.vocab_size
        assert all(math.isfinite(p.x) and math.isfinite(p.y) for p in frame.points)
        assert sum(frame.explained) <= 1 + 1e-9
    assert rp.frame(60) == embeddings.project_model(model, tok, dims=2, step=60)  # the latest, read either way
    table, texts = run_table(run_dir, 60)
    assert torch.equal(table, model.transformer.wte.weight.detach().double())
    assert texts == [tok.id_to_token(i) for i in range(tok.vocab_size)]
    e = tok.encode("e")[0]
    assert len(run_neighbours(run_dir, 0, e, k=3)) == 3 and len(run_neighbours(run_dir, 60, e, k=3)) == 3
    with pytest.raises(FileNotFoundError, match="holds steps"):
        run_table(run_dir, 7)
    size = run_table_size(run_dir)
    assert (size.vocab_size, size.n_embd) == (tok.vocab_size, 32) and size.numbers == tok.vocab_size * 32
    assert size.model_params == sum(p.numel() for p in model.parameters())


# ---- table size and the benchmark ------------------------------------------------------------------------------


def test_table_size_of_the_lesson_preset() -> None:
    size = table_size(PRESETS["lesson"].model_config(65))
    assert (size.numbers, size.bytes_fp32) == (65 * 128, 65 * 128 * 4)
    assert 0 < size.share < 0.05  # tiny beside the blocks: a character vocabulary is small
    assert table_size({**vars(PRESETS["lesson"].model_config(65)), "unknown_key": 1}) == size


def test_benchmark_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_report, "BENCHMARKS_MD", tmp_path / "benchmarks.md")
    rows = bench_embeddings.run(write=True, repeat=1)
    names = [name for name, _ in rows]
    assert any("target < 300 ms" in n for n in names) and any("scrub" in n for n in names)
    assert "Embeddings" in (tmp_path / "benchmarks.md").read_text()
