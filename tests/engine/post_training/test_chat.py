"""engine.post_training.chat: a turn reads only the templated question and reports how it stopped (its own <|end|>,
a new <|user|> turn, the length limit), the exact string read and written, and how much slid out of the window;
greedy is sft.ask's answer; sampling with a fixed seed repeats; ChatML's layout; unknown characters refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.post_training.chat import chatml, knows_template, longest_question, missing_chars, reply
from engine.post_training.chat_template import END, USER, render, with_special_tokens
from engine.post_training.sft import ask
from engine.transform.model import GPT, GPTConfig
from engine.transform.tokenization import CharTokenizer

TOK = with_special_tokens(CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz ?:"))


class Scripted(nn.Module):
    """A stand-in model that writes `script` after the prompt, whatever it reads, and records every window it read."""

    def __init__(self, script: str, prompt_len: int, block_size: int = 64) -> None:
        super().__init__()
        self.config = GPTConfig(n_layer=1, n_head=1, n_embd=4, block_size=block_size, vocab_size=TOK.vocab_size)
        self.weight = nn.Parameter(torch.zeros(1))
        self.script, self.prompt_len, self.read = TOK.encode(script), prompt_len, []
        self.written = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        self.read.append(x[0].tolist())
        logits = torch.zeros(1, x.shape[1], TOK.vocab_size)  # (1, T, V)
        logits[0, -1, self.script[min(self.written, len(self.script) - 1)]] = 10.0
        self.written += 1
        return logits, None


def _scripted(question: str, script: str, block_size: int = 64, **kw):
    model = Scripted(script, len(render(question)), block_size)
    return model, reply(model, TOK, question, **kw)


def test_a_turn_reads_only_the_templated_question_and_stops_at_its_own_end() -> None:
    model, r = _scripted("who?", f"bob{END}more")
    assert model.read[0] == TOK.encode(render("who?"))  # the question alone, in the template
    assert (r.answer, r.stop, r.ended, r.tokens) == ("bob", "end", True, 4)
    assert r.read == "<|user|>who?<|assistant|>" and r.wrote == "bob<|end|>"
    assert (r.temperature, r.seed, r.context, r.slid_out) == (0.0, None, 64, 0)


def test_a_new_turn_or_the_length_limit_is_not_an_ending() -> None:
    _, r = _scripted("who?", f"bob{USER}who")
    assert (r.answer, r.stop, r.ended, r.wrote) == ("bob", "new_turn", False, "bob<|user|>")
    _, r = _scripted("who?", "ab" * 30, max_tokens=12)
    assert (r.answer, r.stop, r.ended, r.tokens) == ("abababababab", "limit", False, 12)


def test_the_model_reads_at_most_its_context_and_the_slide_is_counted() -> None:
    question = "abcdefgh"  # 10 tokens in the template, 8 written: 17 read by the last, in a window of 12
    model, r = _scripted(question, "x" * 20, block_size=12, max_tokens=8)
    assert all(len(window) <= 12 for window in model.read)
    assert r.slid_out == 10 + 8 - 1 - 12 and r.context == 12
    assert longest_question(64) == 54 and longest_question(12) == 2


def test_greedy_is_sft_asks_answer_and_sampling_repeats_with_its_seed() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=TOK.vocab_size)).eval()
    for question in ("who says hi?", "a line for ab", "first word: x"):
        r = reply(model, TOK, question, max_tokens=10)
        assert (r.answer, r.ended) == ask(model, TOK, question, max_tokens=10)
    hot = [reply(model, TOK, "who?", temperature=1.5, seed=s, max_tokens=10) for s in (0, 0, 1)]
    assert hot[0] == hot[1] and hot[0].wrote != hot[2].wrote  # same seed, same words; another seed, others
    assert hot[0].temperature == 1.5 and hot[0].seed == 0
    before = [p.clone() for p in model.parameters()]
    model.train()
    reply(model, TOK, "who?", temperature=0.7)
    assert model.training and all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_unknown_characters_and_untemplated_models_are_refused() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=TOK.vocab_size))
    assert missing_chars(TOK, f"who? ✨ {END}Z") == ["✨", END, "Z"]
    with pytest.raises(ValueError, match="no token for '✨'"):
        reply(model, TOK, "who ✨")
    with pytest.raises(ValueError, match=">= 0"):
        reply(model, TOK, "who?", temperature=-1)
    plain = CharTokenizer.from_text("abc")
    assert knows_template(TOK) and not knows_template(plain)
    with pytest.raises(ValueError, match="not fine-tuned to chat"):
        reply(model, plain, "abc")


def test_chatml_writes_each_turn_between_its_markers() -> None:
    assert chatml("Hi?") == "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    assert chatml("Hi?", "Hello.") == chatml("Hi?") + "Hello.<|im_end|>"
