"""Lesson 10's Load card: the learner's checkpoint (or the reference model's) taken apart with the engine's numbers,
the safetensors round trip, and int8 quantisation, each shown as the engine measured it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from engine.load.quantize import compare_quantized
from engine.load.reference import REFERENCE_DIR
from engine.load.weights import anatomy
from engine.number_format import file_size
from engine.train.config import PRESETS
from engine.train.job import run_job
from paths import DEFAULT_CORPUS
from tests.ui.conftest import no_errors, texts, widget_app


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("anatomy") / "run"
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")  # all of it, as lesson 7 trains: the same vocabulary
    status, _, _ = run_job(replace(PRESETS["tiny"], max_steps=10), text, None, None, run_dir)
    assert status == "finished"
    return run_dir


def _own_run(run_dir: Path) -> None:
    from ui.session import store

    learner = store().get_or_create_learner("Ada")
    store().set_fact(learner.id, "run.main", {"run_id": "from-disk", "run_dir": str(run_dir), "label": "x"})


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_learners_checkpoint_with_the_engines_numbers(db, tiny_run):
    _own_run(tiny_run)
    at = widget_app("checkpoint_anatomy")
    no_errors(at)
    a = anatomy(tiny_run)
    assert at.radio[0].value.startswith("Your run")  # theirs first, the reference beside it
    metrics = _metrics(at)
    assert metrics["Parameters"] == f"{a.parameters:,}"
    assert metrics["Predicted at fp32"] == file_size(a.predictions[0].bytes)
    assert metrics["The real ckpt.pt"] == file_size(a.file_bytes)
    sizes = at.dataframe[0].value
    assert list(sizes["bytes"]) == [p.bytes for p in a.predictions] + [a.weights_bytes, a.file_bytes]
    parts = at.dataframe[1].value
    assert list(parts["entry"])[0] == "model" and "optimizers" in set(parts["entry"])
    tensors = at.dataframe[2].value
    assert list(tensors["name"]) == [t.name for t in a.tensors]
    assert "lm_head.weight" in set(tensors["name"][tensors["tied to"] != ""])
    assert at.get("plotly_chart")


def test_without_a_run_the_reference_model_is_shown(db):
    at = widget_app("checkpoint_anatomy")
    no_errors(at)
    assert not at.radio  # nothing to choose between
    assert "reference model" in texts(at)
    assert _metrics(at)["Parameters"] == f"{anatomy(REFERENCE_DIR).parameters:,}"


def test_the_radio_opens_the_reference_model_beside_the_learners(db, tiny_run):
    _own_run(tiny_run)
    at = widget_app("checkpoint_anatomy")
    at.radio[0].set_value(at.radio[0].options[1]).run()
    no_errors(at)
    assert _metrics(at)["Parameters"] == f"{anatomy(REFERENCE_DIR).parameters:,}"
    assert _metrics(at)["Parameters"] != f"{anatomy(tiny_run).parameters:,}"


def test_the_round_trip_is_identical_and_downloadable(db, tiny_run):
    _own_run(tiny_run)
    at = widget_app("checkpoint_anatomy")
    at.button(key="harness-save").click().run()
    no_errors(at)
    assert any("identical" in s.value for s in at.success)
    assert at.get("download_button")
    codes = [c.value for c in at.code if c.language != "python"]  # not the engine code under the demo
    assert len(codes) == 2 and codes[0] == codes[1]


def test_int8_shows_both_losses_and_sizes(db, tiny_run):
    _own_run(tiny_run)
    at = widget_app("checkpoint_anatomy")
    at.button(key="harness-quantise").click().run()
    no_errors(at)
    q = compare_quantized(tiny_run, DEFAULT_CORPUS.read_text(encoding="utf-8"))
    metrics = _metrics(at)
    assert metrics["Validation loss, float32"] == f"{q.val_loss_fp32:.4f}"
    assert metrics["Validation loss, int8"] == f"{q.val_loss_int8:.4f}"
    table = at.dataframe[-1].value
    assert list(table["in memory"]) == [file_size(q.model_fp32_bytes), file_size(q.model_int8_bytes)]
    assert list(table["as a .safetensors file"]) == [file_size(q.fp32_file_bytes), file_size(q.int8_file_bytes)]
    shown = [c.value.strip() for c in at.code if c.language != "python"]  # st.code trims
    assert shown == [q.text_fp32.strip(), q.text_int8.strip()]
