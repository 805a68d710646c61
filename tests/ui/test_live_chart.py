"""ui.live_chart and the live panel's pure parts: the ECharts option a loss chart sends, the numbers line."""

from __future__ import annotations

import json
import math

from ui.live_chart import Curve, loss_chart_spec
from ui.run_panel import loss_chart, numbers_line
from ui.run_view import RunView


def test_curves_guide_and_axes():
    spec = loss_chart_spec([Curve("train", [(1, 4.0), (2, 3.5)]), Curve("val", [(0, 4.17), (2, 3.6)], bold=True)],
                           y_title="loss", guides=[(4.1744, "random guessing"), (2.49, "character pairs")], y_max=4.8)
    train, val = spec["series"]
    assert train["data"] == [[1, 4.0], [2, 3.5]] and not train["showSymbol"]
    assert val["showSymbol"] and val["lineStyle"]["width"] > train["lineStyle"]["width"]
    assert val["lineStyle"]["color"] != train["lineStyle"]["color"]
    assert train["markLine"]["data"] == [{"yAxis": 4.1744, "label": {"formatter": "random guessing"}},
                                         {"yAxis": 2.49, "label": {"formatter": "character pairs"}}]
    assert spec["yAxis"] == {"type": "value", "name": "loss", "nameLocation": "middle", "nameGap": 42, "scale": False,
                             "min": 0, "max": 4.8}
    assert spec["animation"] is False  # redrawn every second
    json.dumps(spec, allow_nan=False)  # what st.echarts_chart needs: plain JSON, no NaN


def test_values_it_cannot_draw_become_gaps():
    points = [(0, 4.2), (1, math.nan), (2, math.inf), (3, 0.0), (4, 800.0)]
    linear = loss_chart_spec([Curve("train", points)], y_title="loss")
    assert [y for _, y in linear["series"][0]["data"]] == [4.2, "-", "-", 0.0, 800.0]
    log = loss_chart_spec([Curve("train", points)], y_title="loss", log_axis=True, y_max=5.0)
    assert [y for _, y in log["series"][0]["data"]] == [4.2, "-", "-", "-", 800.0]  # log(0) has no place either
    assert log["yAxis"]["type"] == "log" and "min" not in log["yAxis"] and "max" not in log["yAxis"]
    json.dumps(log, allow_nan=False)


def _run(train_losses: list[float], evals: dict[int, float], status: str = "running", eta: float | None = 30.0):
    metrics = [{"step": s, "train_loss": v, "val_loss": evals.get(s), "tokens_per_s": 18_000.0}
               for s, v in enumerate(train_losses)]
    return RunView("main", "r", "d", status, metrics, [], eta_s=eta)


def test_a_run_draws_on_a_linear_axis_from_zero_up_past_random_guessing():
    spec = loss_chart(_run([4.2, 3.9, 3.1, 2.8], {0: 4.17, 3: 2.9}), vocab_size=65)
    assert spec["yAxis"]["type"] == "value" and spec["yAxis"]["min"] == 0
    assert spec["yAxis"]["max"] > math.log(65)
    assert spec["series"][1]["data"] == [[0, 4.17], [3, 2.9]]


def test_a_diverging_run_switches_to_a_log_axis():
    spec = loss_chart(_run([4.2, 4.0, 60.0, math.inf], {0: 4.17}, status="diverged"), vocab_size=65)
    assert spec["yAxis"]["type"] == "log"
    assert spec["series"][0]["data"][-1] == [3, "-"]


def test_numbers_line_while_training():
    live = numbers_line(_run([4.2, 3.9, 3.1], {0: 4.17, 2: 3.0}))
    assert live == "Step **2** · validation loss **3.000** (-1.17 since step 0) · **18,000** tokens/s · **0:30** left"
    exploded = numbers_line(_run([4.2, math.inf], {0: 4.17, 1: math.inf}))  # the step before the engine stops it
    assert "validation loss –" in exploded


def test_line_colours_keep_three_to_one_on_both_themes():
    from tests.ui.test_chart_accessibility import contrast
    from ui.live_chart import BOLD_COLOURS, FAINT_COLOUR

    for colour in (*BOLD_COLOURS, FAINT_COLOUR):
        for background in ("#ffffff", "#171614"):  # the light and the dark theme's page
            assert contrast(colour, background) >= 3.0, (colour, background)
