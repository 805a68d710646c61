"""Talking to a fine-tuned model, one turn at a time, and what a real chat template looks like.

A chat page looks like a conversation, but the model only ever continues one row of tokens. Each turn here, the
page puts the learner's latest question in the template (`<|user|>question<|assistant|>`), and the model writes
until it writes `<|end|>` itself, starts a new `<|user|>` turn, or reaches the length limit. `reply` returns all of
that, so the page can show the exact string the model read and wrote and how it stopped: a chat model "knows" when
its answer is over only because supervised fine-tuning graded `<|end|>` like any other answer token.

Only the latest question goes in. The course's model reads 64 characters at most (its context), about one short
exchange, so earlier turns would push the question itself out of its window. Real assistants read the whole
conversation, each turn in the template, because their contexts hold many thousands of tokens.

The answer is greedy by default (the likeliest token each time, the same answer every time, as `sft.ask` writes
it). With a temperature (lesson 8) it is sampled, from a generator seeded with a fixed number: the same question at
the same temperature still gives the same answer, so a page can be reread, and another temperature gives another.

`chatml` writes the same exchange in ChatML, the template OpenAI published for its chat models and many open models
(Qwen among them) use: longer markers, the same idea.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from engine.look_inside.sampling import GREEDY_BELOW, eval_mode
from engine.post_training.chat_template import END, SPECIAL_NAMES, USER, render, shown
from engine.post_training.sft import ANSWER_TOKENS
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

CHATML_START, CHATML_END = "<|im_start|>", "<|im_end|>"
MIN_ANSWER_ROOM = 8  # positions of the context left for the answer's start when the question is as long as allowed
SEED = 0  # the sampling generator's seed: the same question at the same temperature gives the same answer


def chatml(question: str, answer: str | None = None) -> str:
    """The exchange in ChatML: each turn opens with `<|im_start|>` and its role's name on a line of its own and
    closes with `<|im_end|>`; `answer` None gives the prompt a model answers. In the models that use it, each marker
    is one special token, as `<|user|>` is here.

    >>> print(chatml("Hi?", "Hello."))
    <|im_start|>user
    Hi?<|im_end|>
    <|im_start|>assistant
    Hello.<|im_end|>
    """
    prompt = f"{CHATML_START}user\n{question}{CHATML_END}\n{CHATML_START}assistant\n"
    return prompt if answer is None else f"{prompt}{answer}{CHATML_END}"


def missing_chars(tokenizer: Tokenizer, text: str) -> list[str]:
    """The characters of `text` a character tokenizer has no token for, each once, in the order they appear
    (special tokens' characters count as missing: only the template may place them).

    >>> from engine.transform.tokenization import CharTokenizer
    >>> missing_chars(CharTokenizer.from_text("abc "), "a cab ✨ and é")
    ['✨', 'n', 'd', 'é']
    """
    known = getattr(tokenizer, "stoi", {})
    out: list[str] = []
    for ch in text:
        if (ch not in known or ch in SPECIAL_NAMES) and ch not in out:
            out.append(ch)
    return out


def knows_template(tokenizer: Tokenizer) -> bool:
    """Whether a model's tokenizer has the template's special tokens: only a model fine-tuned in the template can
    be talked to in it."""
    known = getattr(tokenizer, "stoi", {})
    return all(ch in known for ch in SPECIAL_NAMES)


def longest_question(block_size: int) -> int:
    """The most characters a question may have: with `<|user|>` and `<|assistant|>` it fits the model's context
    with room left for the start of an answer.

    >>> longest_question(64)
    54
    """
    return max(1, block_size - 2 - MIN_ANSWER_ROOM)


@dataclass(frozen=True)
class Reply:
    """One turn: what the model read, what it wrote and how it stopped."""

    question: str
    answer: str  # what it wrote up to its <|end|> (or a new <|user|>), special tokens by name
    stop: str  # "end": it wrote <|end|> itself; "new_turn": it began a <|user|> turn; "limit": it ran out of room
    read: str  # the templated prompt it read, special tokens by name: <|user|>question<|assistant|>
    wrote: str  # everything it wrote, special tokens by name, its <|end|> included
    tokens: int  # tokens written
    max_tokens: int
    temperature: float  # 0: greedy
    seed: int | None  # the sampling generator's seed; None when greedy
    context: int  # the model's block_size: the most tokens it reads at once
    slid_out: int  # tokens at the front of the prompt that had left its window by the last token it wrote

    @property
    def ended(self) -> bool:
        return self.stop == "end"


def reply(model: GPT, tokenizer: Tokenizer, question: str, temperature: float = 0.0, seed: int = SEED,
          max_tokens: int = ANSWER_TOKENS) -> Reply:
    """The model's answer to `question` alone, in the template: greedy (temperature 0, as `sft.ask`) or sampled at
    `temperature` from a generator seeded with `seed`. A ValueError names characters the tokenizer lacks."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not knows_template(tokenizer):
        raise ValueError("this model's tokenizer has no chat template tokens: it was not fine-tuned to chat")
    if missing := missing_chars(tokenizer, question):
        raise ValueError("the model has no token for " + ", ".join(repr(ch) for ch in missing))
    prompt = tokenizer.encode(render(question))
    stop_ids = {tokenizer.encode(END)[0]: "end", tokenizer.encode(USER)[0]: "new_turn"}
    greedy = temperature < GREEDY_BELOW
    generator = None if greedy else torch.Generator().manual_seed(seed)
    block = model.config.block_size
    device = next(model.parameters()).device
    x = torch.tensor([prompt], dtype=torch.long, device=device)  # (1, T)
    written: list[int] = []
    stop = "limit"
    with eval_mode(model):
        for _ in range(max_tokens):
            logits = model(x[:, -block:])[0][0, -1, :model.config.vocab_size].float().cpu()  # (V,)
            if greedy:
                nxt = int(logits.argmax())
            else:
                probs = F.softmax(logits / temperature, dim=-1)  # (V,)
                nxt = int(torch.multinomial(probs, 1, generator=generator))
            written.append(nxt)
            if nxt in stop_ids:
                stop = stop_ids[nxt]
                break
            x = torch.cat([x, torch.tensor([[nxt]], device=device)], dim=1)  # (1, T + 1)
    slid = max(0, len(prompt) + len(written) - 1 - block)  # the last token was predicted from the last `block`
    text = tokenizer.decode(written)
    answer = text[:-1] if stop != "limit" else text
    return Reply(question, shown(answer), stop, shown(tokenizer.decode(prompt)), shown(text), len(written),
                 max_tokens, 0.0 if greedy else float(temperature), None if greedy else seed, block, slid)
