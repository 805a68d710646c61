"""Lesson 9's picture of splitting a model over GPUs (ui/widgets/parallelism_map.py): the chart draws the engine's
numbers with the H100 line and reads in both themes, and the widget in AppTest follows its GPU slider and model."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from course.widgets import ParallelismMapParams
from engine.cost.parallelism import published_parallelism
from tests.ui.conftest import no_errors, texts, widget_app
from tests.ui.test_chart_accessibility import BACKGROUNDS, NON_TEXT_CONTRAST, colours, contrast
from ui.widgets import parallelism_map as widget


def test_the_chart_stacks_each_schemes_fullest_gpu_and_draws_the_chip_line():
    m = published_parallelism("llama3_8b", 8)
    fig = widget.chart(m, 80.0)
    assert [t.name for t in fig.data] == ["weights (16-bit)", "gradients (16-bit)", "master weights (float32)",
                                          "AdamW momentum and variance"]
    stacked = [sum(t.y[i] for t in fig.data) for i in range(len(m.schemes))]
    assert stacked == pytest.approx([128.0, 44.0, 30.0, 16.0, 16.0, 16.0])  # GB: DDP, ZeRO-1, 2, 3, tensor, pipeline
    assert fig.layout.shapes[0].y0 == 80.0 and "80 GB" in fig.layout.annotations[0].text
    log = widget.chart(m, 80.0, log=True)
    assert log.layout.yaxis.type == "log" and log.layout.annotations[0].y == pytest.approx(math.log10(80))
    assert log.layout.shapes[0].y0 == 80.0  # shapes stay in data units on a log axis; annotations do not
    rows = widget.table(m, 80.0)
    assert [r["Fits 80 GB?"] for r in rows] == ["no", "yes", "yes", "yes", "yes", "yes"]
    assert rows[0]["One GPU holds"] == "**128 GB**" and rows[4]["Each GPU sends per step"] == "activations"


def test_the_chart_reads_in_both_themes():
    fig = widget.chart(published_parallelism("gpt3_175b", 64), 80.0).to_plotly_json()
    assert fig["layout"]["xaxis"]["title"]["text"] and fig["layout"]["yaxis"]["title"]["text"]
    fig["layout"].pop("template", None)
    found = colours(fig)
    assert len(found) >= 5  # four parts and the line
    for where, c in found:
        assert "font" not in where, where  # text takes the theme's colour
        for theme, background in BACKGROUNDS.items():
            assert contrast(c, background) >= NON_TEXT_CONTRAST, (where, c, theme)


def test_params_take_only_the_sliders_stops_and_catalogue_models():
    assert ParallelismMapParams().gpus in ParallelismMapParams.GPU_COUNTS
    for bad in ({"gpus": 3}, {"gpus": 2048}, {"micro_batches": 0}, {"model": "gpt5"}):
        with pytest.raises(ValidationError):
            ParallelismMapParams(**bad)


def test_the_widget_follows_its_gpu_slider_and_its_model(db):
    at = widget_app("parallelism_map", {"model": "llama3_8b", "gpus": 8, "micro_batches": 8})
    no_errors(at)
    shown = texts(at)
    assert "trains with **128 GB** of state on one GPU" in shown
    assert "On 8 GPUs, these fit it in 80 GB per GPU (before activations): ZeRO-1, ZeRO-2" in shown
    assert "ZeRO-3 / FSDP 16 GB (fits)" in shown and "idle **47%** of the step" in shown
    at.select_slider(key="harness-gpus").set_value(1).run()
    no_errors(at)
    shown = texts(at)
    assert "On 1 GPU, no scheme fits it in 80 GB per GPU" in shown and "ZeRO-3 / FSDP 128 GB (over 80 GB)" in shown
    assert "idle **0%** of the step" in shown
    at.selectbox(key="harness-model").set_value("llama3_1_405b").run()
    at.select_slider(key="harness-gpus").set_value(128).run()
    no_errors(at)
    assert "ZeRO-3 / FSDP 50.6 GB (fits)" in texts(at) and "Data parallel (DDP) 6.48 TB (over 80 GB)" in texts(at)
