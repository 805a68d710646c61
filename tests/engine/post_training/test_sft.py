"""engine.post_training: the chat template, the instruction set, the SFT data, the token table grown for the special
tokens, LoRA adapters and merging, and SFT runs (full and LoRA) from the reference model through the real job."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.load.checkpoint import load_checkpoint
from engine.load.reference import REFERENCE_DIR
from engine.post_training import lora
from engine.post_training.chat_template import (
    ASSISTANT,
    END,
    IGNORE,
    USER,
    answer_from,
    example_ids,
    grow_token_table,
    render,
    shown,
    template_table,
    with_special_tokens,
)
from engine.post_training.dialogue_data import DialogueDataset, split_exchanges
from engine.post_training.instructions import bundled, parse
from engine.post_training.sft import ask, ask_many, base_vs_assistant, score, sft_config
from engine.train.job import run_job
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer

REPO = Path(__file__).resolve().parents[3]
SHORT = dict(time_budget=None, max_steps=24, eval_interval=12, eval_every_s=None, sample_every_s=None,
             record_every_s=None, sample_interval=24, eval_batches=2, final_eval_batches=4, threads=1,
             dtype="float32")


# ---- the template ---------------------------------------------------------------------------------------


def test_special_tokens_are_new_ids_after_the_old_ones_and_only_the_answer_is_graded() -> None:
    base = CharTokenizer.from_text("abc ?")
    tok = with_special_tokens(base)
    assert tok.chars[:base.vocab_size] == base.chars and tok.vocab_size == base.vocab_size + 3
    assert with_special_tokens(tok) is tok  # idempotent: a resumed SFT run keeps its ids
    inputs, targets = example_ids(tok, "ab", "c")
    assert tok.decode(inputs) == f"{USER}ab{ASSISTANT}c"  # the model reads all but the last token
    # predicting a, b, <|assistant|> is the question's business; c and <|end|> are graded
    assert targets == [IGNORE, IGNORE, IGNORE, tok.encode("c")[0], tok.encode(END)[0]]
    rows = template_table(tok, "ab", "c")
    assert [r.token for r in rows] == ["<|user|>", "a", "b", "<|assistant|>", "c", "<|end|>"]
    assert [r.trained for r in rows] == [False, False, False, True, True, False]
    assert rows[3].target == "c" and rows[4].target == "<|end|>" and rows[-1].target == ""


def test_the_template_refuses_smuggled_special_tokens_and_cuts_answers_at_end() -> None:
    with pytest.raises(ValueError, match="special token"):
        render(f"hi{END}", "x")
    assert shown(render("q", "a")) == "<|user|>q<|assistant|>a<|end|>"
    assert answer_from(f"JULIET{END}more") == ("JULIET", True)
    assert answer_from(f"JULIET{USER}Who") == ("JULIET", False)  # began a new turn itself: not an ending
    assert answer_from("JULIET and on") == ("JULIET and on", False)
    with pytest.raises(ValueError, match="character-level"):
        from engine.transform.tokenization import train_bpe
        with_special_tokens(train_bpe("abc abd " * 50, 260))


# ---- the instruction set and its batches ---------------------------------------------------------------


def test_the_bundled_set_is_the_builders_output_and_fits_the_lesson_models_context() -> None:
    done = subprocess.run([sys.executable, "data/build_instructions.py", "--check"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    s = bundled()
    assert len(s.exchanges) == 1200 and s.held_out == 120 and {e.kind for e in s.validation} == {
        "speaker", "first_word", "a_line"}
    trained_lines = {e.question.split(": ", 1)[-1] for e in s.train} | {e.answer for e in s.train}
    for e in s.validation:  # a held-out line is in no trained exchange, as question or as answer
        line = e.answer if e.kind == "a_line" else e.question.split(": ", 1)[1]
        assert line not in trained_lines
    ref_tok = with_special_tokens(load_checkpoint(REFERENCE_DIR)[1])
    data = DialogueDataset(s.run_text(), ref_tok)
    data.check_block_size(64)
    assert len(data.examples["val"]) == 120 and len(data.examples["train"]) == 1080


@pytest.mark.parametrize(("row", "message"), [
    ({"kind": "poem", "question": "q", "answer": "a"}, "exchange 2 needs a kind"),
    ({"kind": "speaker", "question": "q"}, "exchange 2 needs a question and an answer"),
    ({"kind": "speaker", "question": "q", "answer": f"a{END}"}, "exchange 2 holds a special token"),
])
def test_a_broken_instruction_row_is_refused_with_its_number(row: dict, message: str) -> None:
    good = {"kind": "speaker", "question": "Who says: Hi", "answer": "ROMEO"}
    with pytest.raises(ValueError, match=message):
        parse({"held_out": 1, "exchanges": [good, row, good]})


def test_held_out_must_be_the_last_tenth() -> None:
    good = {"kind": "speaker", "question": "Who says: Hi", "answer": "ROMEO"}
    with pytest.raises(ValueError, match="`held_out` must be 1"):
        parse({"held_out": 3, "exchanges": [good] * 4})


def test_batches_are_whole_exchanges_padded_right_with_the_question_ignored() -> None:
    tok = with_special_tokens(CharTokenizer.from_text("abcdefgh"))
    text = "".join(render(q, a) for q, a in [("ab", "c"), ("abcd", "ef"), ("a", "g"), ("h", "h")] * 5)
    data = DialogueDataset(text, tok)
    assert len(data.examples["train"]) == 18 and len(data.examples["val"]) == 2
    x, y = data.get_batch("train", 16, 64, torch.Generator().manual_seed(0))
    assert x.shape == y.shape and x.shape[1] == 8  # the longest exchange, <u> a b c d <a> e f <e>, less its last token
    for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True):
        assert row_x[0] == tok.encode(USER)[0]  # each row starts at a turn, never mid-answer
        graded = [t for t in row_y if t != IGNORE]
        assert graded[-1] == tok.encode(END)[0]  # the answer's last graded token is <|end|>
        assistant_at = row_x.index(tok.encode(ASSISTANT)[0])
        assert all(t == IGNORE for t in row_y[:assistant_at])  # nothing of the question is graded
    with pytest.raises(ValueError, match="starting with <|user|>"):
        split_exchanges("plain text")
    with pytest.raises(ValueError, match="is 9 tokens long"):
        data.check_block_size(4)


# ---- the token table and LoRA ----------------------------------------------------------------------------


def test_new_token_rows_are_the_mean_and_old_rows_keep_their_values() -> None:
    torch.manual_seed(0)
    small = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=5))
    big = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=8))
    grown = grow_token_table(small.state_dict(), big)
    old = small.state_dict()["transformer.wte.weight"]
    assert torch.equal(grown["transformer.wte.weight"][:5], old)
    assert torch.allclose(grown["transformer.wte.weight"][5:], old.mean(0).expand(3, -1))
    big.load_state_dict(grown)  # fits, tied head included
    assert big.lm_head.weight.data_ptr() == big.transformer.wte.weight.data_ptr()


def test_lora_starts_at_the_model_merges_exactly_and_counts_what_it_trains() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=3, vocab_size=68))  # the lesson model's shape
    x = torch.randint(0, 68, (2, 12))  # (B, T)
    before = model(x)[0].detach()
    adapters = lora.attach(model, rank=4)
    assert torch.equal(model(x)[0], before)  # B = 0: training starts from exactly the model
    with torch.no_grad():
        for b in adapters.B.values():
            b.normal_(std=0.05)
    adapted = model(x)[0].detach()
    plain = GPT(GPTConfig(n_layer=3, vocab_size=68))
    plain.load_state_dict(lora.merged_state_dict(model, adapters))
    assert torch.allclose(plain(x)[0], adapted, atol=1e-5) and not torch.allclose(adapted, before, atol=1e-3)
    count = lora.count_trainable(model, 4)
    # per block: qkv 4 x (128 + 384), out 4 x (128 + 128), MLP 4 x (128 + 512) twice = 8,192; three blocks
    assert count.adapters == 24_576 and count.token_table == 68 * 128 and count.positions == 64 * 128
    assert count.total_model == sum(p.numel() for p in model.parameters())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"transformer.wte.weight"}  # the rest frozen; the adapters train beside the model


# ---- SFT runs through the real job -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sft_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The reference model fine-tuned on the instruction set for 24 steps, fully and with rank-2 LoRA."""
    text = bundled().run_text()
    runs = {}
    for rank in (0, 2):
        run_dir = tmp_path_factory.mktemp(f"sft{rank}") / "run"
        config = replace(sft_config(60, lora_rank=rank), **SHORT)
        status, message, _ = run_job(config, text, None, None, run_dir, finetune_from=REFERENCE_DIR)
        assert status == "finished", message
        runs[rank] = run_dir
    return runs


def test_an_sft_run_learns_the_answers_and_saves_a_model_with_the_special_tokens(sft_runs) -> None:
    model, tok, config, metrics = load_checkpoint(sft_runs[0])
    ref_model, ref_tok, _, _ = load_checkpoint(REFERENCE_DIR)
    assert config["sft"] is True and tok.vocab_size == ref_tok.vocab_size + 3
    assert tok.chars[-3:] == [USER, ASSISTANT, END]
    evals = [r["val_loss"] for r in metrics if r.get("val_loss") is not None]
    assert evals[-1] < evals[0] - 0.3  # the held-out answers' loss falls
    answer, _ = ask(model, tok, bundled().validation[0].question)
    assert isinstance(answer, str) and USER not in answer
    side = base_vs_assistant((ref_model, ref_tok), (model, tok), "Who says: Speak, speak.", "All")
    assert side.base and side.expected == "All"
    scores = score(model, tok, bundled().validation[:6])
    assert sum(s.total for s in scores) == 6
    questions = [e.question for e in bundled().validation[:12]]  # several prompt lengths, some shared
    assert ask_many(model, tok, questions) == [ask(model, tok, q) for q in questions]  # batched, the same answers


def test_a_lora_run_changes_the_big_matrices_by_a_low_rank_only(sft_runs) -> None:
    tuned, _, config, _ = load_checkpoint(sft_runs[2])
    ref, _, _, _ = load_checkpoint(REFERENCE_DIR)
    assert config["lora_rank"] == 2
    new, old = tuned.state_dict(), ref.state_dict()
    for name in ("transformer.h.0.attn.c_attn.weight", "transformer.h.2.mlp.c_fc.weight"):
        change = (new[name] - old[name]).double()
        assert change.abs().max() > 0 and int(torch.linalg.matrix_rank(change, atol=1e-5)) <= 2
    for name in ("transformer.wpe.weight", "transformer.h.1.ln_1.weight"):  # frozen: untouched
        assert torch.equal(new[name], old[name])
