"""The live demos of lessons 1, 2 and 7, in AppTest: the pipeline trace, the counting models' loss
and gradient descent on one weight. Each shows the engine's numbers, reacts to the learner, and shows its code."""

from __future__ import annotations

import math

from engine.extract.bundled import read_text
from engine.transform.descent import descend
from tests.ui.conftest import no_errors, texts, widget_app


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_pipeline_trace_follows_a_line_through_the_four_stages(db):
    at = widget_app("pipeline_trace")
    no_errors(at)
    shown = texts(at)
    for stage in ("1 · Extract", "2 · Transform", "3 · Load", "4 · Retrieve"):
        assert stage in shown
    corpus = read_text("tinyshakespeare")
    line = "But, soft! what light through yonder window breaks?"
    assert f"at character **{corpus.find(line):,}**" in shown  # found where it really is
    assert f"makes **{len(line) - 1}** practice questions" in shown
    assert len(at.table[0].value) == 6  # the first practice questions, a static table (no data-grid library to load)
    assert any("window" in t.value for t in at.text)  # the retrieved passages, as plain text
    at.text_input(key="harness-line").set_value("I love pizza 🍕").run()
    no_errors(at)
    shown = texts(at)
    assert "never sees this exact line" in shown
    assert "🍕" in " ".join(w.value for w in at.warning)  # the emoji has no token id: said so
    assert "The engine code behind this demo" in [e.label for e in at.expander]
    # the code is sent to the browser only once the expander is opened (syntax highlighting is the page's priciest part)
    assert not [c for c in at.code if c.language == "python"]
    at.session_state["harness-code"] = True  # what opening it does (on_change="rerun" keeps it in the session)
    at.run()
    shown = [c.value for c in at.code if c.language == "python"]
    assert shown and shown[0].startswith("def ")
    assert "pipeline_trace.py" in texts(at)


def test_counting_loss_scores_a_guess_and_a_line(db):
    at = widget_app("counting_loss")
    no_errors(at)
    assert "−ln **0.5** = **0.69** nats" in texts(at)
    at.select_slider(key="harness-p").set_value(0.01).run()
    assert "−ln **0.01** = **4.61** nats" in texts(at)
    guess, counts, pairs = (float(_metric(at, k)) for k in ("Random guessing", "Character counts", "Character pairs"))
    assert guess == round(math.log(65), 2) and guess > counts > pairs > 2.0
    at.text_input(key="harness-line").set_value("the king").run()
    no_errors(at)
    assert "Average over your line: **" in texts(at)
    at.text_input(key="harness-line").set_value("🍕").run()
    assert "Type at least two characters" in texts(at)


def test_descent_steps_show_each_learning_rate_regime(db):
    at = widget_app("descent_steps", {"lr": 0.05})
    no_errors(at)
    assert "**Too small.**" in texts(at)
    for lr, verdict in [(0.5, "About right"), (1.6, "Overshooting"), (2.4, "Diverging")]:
        at.select_slider(key="harness-lr").set_value(lr).run()
        no_errors(at)
        assert f"**{verdict}.**" in texts(at)
        assert _metric(at, "Loss after 12 steps") in (f"{descend(lr).losses[-1]:.3g}", f"{descend(lr).losses[-1]:.1e}")
