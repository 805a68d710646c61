"""Lesson 5's embedding widgets in AppTest: the map moves with the timeline slider (fixed ranges, a caption with
the explained variance, a summary in words), the neighbours table compares step 0 with the end, and the size tiles
come from the shown model's own config."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from engine.load.reference import REFERENCE_DIR
from engine.look_inside.embeddings import run_projection, run_table_size
from tests.ui.conftest import no_errors, texts, widget_app
from ui.widgets import embedding_map


def _points(at: AppTest) -> dict[str, tuple[float, float]]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {t: (x, y) for trace in spec["data"] for t, x, y in zip(trace["text"], trace["x"], trace["y"], strict=True)}


def test_map_starts_at_step_0_and_the_slider_moves_the_tokens(db):
    rp = run_projection(REFERENCE_DIR, dims=3)
    at = widget_app("embedding_map")
    no_errors(at)
    assert "at step 0:" in texts(at) and "The chart in words: 65 tokens at step 0" in texts(at)
    start = _points(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    x_range = spec["layout"]["xaxis"]["range"]
    at.select_slider(key="harness-step").set_value(rp.steps[-1]).run()
    no_errors(at)
    end = _points(at)
    assert set(start) == set(end) and len(end) == 65
    assert start["e"] != end["e"]
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["xaxis"]["range"] == x_range  # fixed ranges
    shown = f"{sum(rp.frame(rp.steps[-1]).explained[:2]):.1%} together"
    assert shown in texts(at)
    rows = embedding_map.tightness(rp.frame(rp.steps[-1]))
    assert rows[0][2] < 0.8, "some group has gathered by the end of training"


def test_map_in_three_dimensions(db):
    at = widget_app("embedding_map", {"start_at": "last"})
    at.toggle(key="harness-3d").set_value(True).run()
    no_errors(at)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["type"] == "scatter3d"
    assert "axis 3" in texts(at)


def test_neighbours_of_e_change_from_step_0_to_the_end(db):
    at = widget_app("embedding_neighbours", {"token": "e", "k": 5})
    no_errors(at)
    before, after = (df.value for df in at.dataframe)
    assert len(before) == len(after) == 5
    assert list(before["token"]) != list(after["token"])
    assert set(after["token"]) & {"a", "i", "o", "u"}, "vowels are near e once trained"
    assert "Step 0" in texts(at)


def test_table_size_tiles_from_the_models_config(db):
    size = run_table_size(REFERENCE_DIR)
    at = widget_app("embedding_table_size")
    no_errors(at)
    values = {m.label: m.value for m in at.metric}
    assert values["Numbers (V × C)"] == f"{size.numbers:,}"
    assert values["Rows (V)"] == f"{size.vocab_size:,}"
    at.number_input(key="harness-what-if").set_value(size.vocab_size * 2).run()
    assert f"**{size.numbers * 2:,}** numbers" in texts(at)
