"""Lesson 8's widgets in AppTest: next-token probabilities react to the knobs and grow a text token by token
(sampled reproducibly, or picked), the model's probabilities sit beside the text's counts, the timeline samples
are listed with their steps, and the overfitting run starts under its own run key."""

from __future__ import annotations

import json
import time

from streamlit.testing.v1 import AppTest

from engine.load.checkpoint import list_timeline
from engine.load.reference import REFERENCE_DIR
from tests.ui.conftest import no_errors, texts, widget_app


def _bars(at: AppTest) -> dict[str, list[float]]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {trace["name"]: trace["y"] for trace in spec["data"]}


def test_knobs_reshape_the_distribution(db):
    at = widget_app("next_token_probs", {"prompt": "To be, or not to be, th"})
    no_errors(at)
    bars = _bars(at)
    raw, kept = bars["raw softmax (temperature 1, nothing removed)"], bars["after your settings"]
    assert all(abs(a - b) < 1e-5 for a, b in zip(raw, kept, strict=True))  # temperature 1, nothing removed
    assert raw == sorted(raw, reverse=True) and 0 < sum(raw) <= 1.0001
    at.slider(key="harness-top-k").set_value(3).run()
    no_errors(at)
    kept = _bars(at)["after your settings"]
    assert sum(1 for p in kept if p > 0) == 3 and abs(sum(kept) - 1) < 1e-4
    assert "keep **3** of the 65" in texts(at)
    at.slider(key="harness-top-k").set_value(0).run()
    at.slider(key="harness-temperature").set_value(0.0).run()
    kept = _bars(at)["after your settings"]
    assert kept[0] == 1.0 and sum(kept[1:]) == 0  # greedy


def test_generate_and_pick_token_by_token(db):
    def grow() -> str:
        at = widget_app("next_token_probs", {"prompt": "To be, or not to be, th"})
        for _ in range(3):
            at.button(key="harness-sample").click().run()
        no_errors(at)
        return at.code[0].value, at

    first, at = grow()
    again, _ = grow()
    assert first == again and first.startswith("To be") and len(first) == len("To be, or not to be, th") + 3  # seeded
    steps = at.dataframe[0].value
    assert list(steps["chosen by"]) == ["the model"] * 3 and all(0 < p <= 1 for p in steps["probability"])
    pick = next(b for b in at.button if b.key.startswith("harness-pick-") and not b.disabled)
    pick.click().run()
    no_errors(at)
    assert at.code[0].value.startswith(first) and len(at.code[0].value) == len(first) + 1
    assert list(at.dataframe[0].value["chosen by"])[-1] == "you"
    at.button(key="harness-clear").click().run()
    assert at.code[0].value == "To be, or not to be, th"


def test_greedy_text_is_the_same_whatever_the_seed(db):
    out = []
    for seed in (0, 1):
        at = widget_app("next_token_probs", {"prompt": "To be, or not to be, th", "temperature": 0.0, "seed": seed})
        at.button(key="harness-more").click().run()
        no_errors(at)
        out.append(at.code[0].value)
    assert out[0] == out[1]


def test_model_beside_the_counts(db):
    at = widget_app("model_vs_counts", {"context": "th"})
    no_errors(at)
    bars = _bars(at)
    shares, probs = bars["share in the training text (counted)"], bars["the model's probability"]
    assert len(shares) == len(probs) == 10 and shares == sorted(shares, reverse=True)
    assert abs(shares[0] - probs[0]) < 0.2, "the reference model learned the commonest follower of 'th'"
    assert "Tiny Shakespeare" in texts(at) and "percentage points" in texts(at)


def test_timeline_samples_listed_by_step(db):
    entries = [e for e in list_timeline(REFERENCE_DIR) if e.get("sample")]
    at = widget_app("timeline_samples")
    no_errors(at)
    samples = [c for c in at.code if c.language != "python"]  # not the engine code under the demo (ui/code_view)
    assert len(samples) == len(entries)
    assert f"Step **{entries[-1]['step']:,}**" in texts(at)
    assert samples[-1].value == entries[-1]["sample"].strip("\n")


def test_overfit_run_trains_on_the_slice_and_names_the_best_checkpoint(db):
    params = {"preset": "tiny", "eval_interval": 10}
    at = widget_app("overfit_run", params)
    no_errors(at)
    assert "first **10,000** characters" in texts(at) and "9,000 to learn from" in texts(at)
    at.button(key="harness-start").click().run()
    no_errors(at)
    deadline = time.time() + 120
    while "Lowest validation loss" not in texts(at) and time.time() < deadline:
        time.sleep(0.5)
        at.run()
    no_errors(at)
    shown = texts(at)
    assert "Lowest validation loss" in shown and "Early stopping would have kept the model from step" in shown
    from ui import run_view
    from ui.session import store

    run = run_view.load(store().last_learner().id, "overfit")
    assert run is not None and run.status == "finished" and len(run.evals) >= 6  # evaluated every 10 steps


def test_overfit_run_with_the_engines_early_stopping_rule(db):
    """Switched on, the rule goes with the run's config; a run it stops says so in the engine's words."""
    at = widget_app("overfit_run", {"preset": "tiny", "eval_interval": 5, "early_stop_patience": 2,
                                  "slice_chars": 2000})
    at.toggle(key="harness-stop-early").set_value(True).run()
    at.button(key="harness-start").click().run()
    no_errors(at)
    from ui import run_view
    from ui.session import store

    learner = store().last_learner().id
    assert run_view.load(learner, "overfit").config["early_stop_patience"] == 2
    deadline = time.time() + 120
    while run_view.load(learner, "overfit").active and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    no_errors(at)
    run = run_view.load(learner, "overfit")
    # the tiny preset (float32, one thread: the same numbers on every machine) levels off on 1,800 characters
    assert run.status == "finished" and run.step < 60
    assert run.message.startswith(f"Stopped early at step {run.step}") and "Stopped early" in texts(at)
