"""The chat box (ui/widgets/chat_box.py): without an ended fine-tune it says so and points to the card that trains
one; with a real SFT run (the reference model fine-tuned for a few steps through the run manager) each question gets
an answer from the model alone, with the exact templated string it read and wrote and how it stopped; examples are
held-out questions; the temperature samples with a fixed seed; unknown characters are refused by name."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from engine.load.reference import REFERENCE_DIR
from engine.post_training.instructions import bundled
from engine.post_training.sft import sft_config
from tests.ui.conftest import no_errors, texts, widget_app
from ui.run_view import RunView
from ui.text import escape_md

SHORT = dict(time_budget=None, max_steps=6, eval_interval=6, eval_every_s=None, sample_every_s=None,
             record_every_s=None, sample_interval=6, eval_batches=1, final_eval_batches=1, threads=1,
             dtype="float32")


def _turns(at) -> list[tuple[str, str]]:
    """(question, answer) of each turn shown, from the chat messages."""
    messages = at.chat_message
    return [(messages[i].markdown[0].value, messages[i + 1].markdown[0].value) for i in range(0, len(messages), 2)]


def test_without_a_finetune_the_box_points_to_the_card_that_trains_one(db) -> None:
    at = widget_app("chat_box")
    no_errors(at)
    assert "no fine-tuned model yet" in texts(at) and "**Try it: teach your model to answer**" in texts(at)
    assert not at.chat_input and not at.chat_message  # nothing fake to talk to


@pytest.mark.parametrize(("status", "says"), [("running", "still being fine-tuned (step 12)"),
                                              ("failed", "ended without saved weights")])
def test_a_finetune_still_training_or_without_weights_is_not_talked_to(db, monkeypatch, tmp_path, status, says):
    from ui import run_view

    run = RunView("assistant", "r1", str(tmp_path), status, [{"step": 12}])  # a folder with no ckpt.pt
    monkeypatch.setattr(run_view, "load", lambda learner, key: run if key == "assistant" else None)
    at = widget_app("chat_box")
    no_errors(at)
    assert says in texts(at) and not at.chat_input


@pytest.fixture
def assistant_run(db):
    """The learner's 'assistant' run: the reference model fine-tuned in the template for 6 steps (seconds)."""
    from ui import run_view
    from ui.session import store

    at = widget_app("chat_box")
    learner = store().last_learner().id
    config = replace(sft_config(60), **SHORT)
    run_view.start(learner, "assistant", config, bundled().run_text(), label="assistant", finetune_from=REFERENCE_DIR)
    deadline = time.time() + 120
    while run_view.load(learner, "assistant").active:
        assert time.time() < deadline, "the SFT run did not end"
        time.sleep(0.3)
    assert run_view.load(learner, "assistant").status == "finished", run_view.load(learner, "assistant").message
    return at.run()


def test_each_question_is_answered_in_the_template_with_what_it_read_and_wrote(assistant_run) -> None:
    at = assistant_run
    no_errors(at)
    assert "your fine-tuned model" in texts(at) and "its context is 64 characters" in texts(at)
    assert at.chat_input(key="harness-ask").max_chars == 54

    at.chat_input(key="harness-ask").set_value("Who says: Speak, speak.").run()
    no_errors(at)
    (question, answer), = _turns(at)
    assert question == escape_md("Who says: Speak, speak.") and answer  # typed text shown as text, never Markdown
    read_wrote = at.code[0].value
    assert read_wrote.startswith("<|user|>Who says: Speak, speak.<|assistant|>")
    wrote = read_wrote.removeprefix("<|user|>Who says: Speak, speak.<|assistant|>")
    stops = " ".join(c.value for c in at.caption)
    if wrote.endswith("<|end|>"):  # how it stopped is read off what it wrote
        assert "ended its answer by itself" in stops
    elif wrote.endswith("<|user|>"):
        assert "began a new `<|user|>` turn" in stops
    else:
        assert "hit the length limit of 40 tokens" in stops and len(wrote) == 40
    assert "Greedy" in stops

    example = next(e for e in bundled().validation if e.kind == "speaker")
    at.button(key="harness-example-0").click().run()  # a held-out question, one click
    no_errors(at)
    assert len(_turns(at)) == 2 and at.code[1].value.startswith(f"<|user|>{example.question}<|assistant|>")

    at.slider(key="harness-temperature").set_value(1.5).run()
    for _ in range(2):  # sampled, with a fixed seed: the same question at one temperature gets one answer
        at.chat_input(key="harness-ask").set_value("A line for ROMEO").run()
    no_errors(at)
    turns = _turns(at)
    assert len(turns) == 4 and turns[2] == turns[3] and at.code[2].value == at.code[3].value
    assert "Sampled at temperature 1.5 with seed 0" in " ".join(c.value for c in at.caption)


def test_unknown_characters_are_refused_and_the_conversation_clears(assistant_run) -> None:
    at = assistant_run
    at.chat_input(key="harness-ask").set_value("Who says ✨?").run()
    no_errors(at)
    assert "no token for `✨`" in " ".join(w.value for w in at.warning) and not at.chat_message
    at.chat_input(key="harness-ask").set_value("First word: Go").run()
    assert len(_turns(at)) == 1
    at.button(key="harness-clear").click().run()
    no_errors(at)
    assert not at.chat_message
