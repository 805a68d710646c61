"""Supervised fine-tuning (SFT): a pre-trained model learns to answer in the chat template, from instruction pairs.

An SFT run is a fine-tune like lesson 10's (`RunManager.submit(config, text, finetune_from=run_dir)`), with three
differences that `prepare` makes when the config says `sft`:

1. the tokenizer gains the template's special tokens and the model's token table one new row for each
   (engine.post_training.chat_template: `sft_tokenizer`, `grow_token_table`), set to the mean of the trained rows
   (a neutral start that changes none of the old tokens' rows, Hewitt 2021);
2. batches are whole exchanges with the loss on the answers only (engine.post_training.dialogue_data);
3. with `lora_rank` > 0 only LoRA adapters and the token table train (engine.post_training.lora), and the
   checkpoint holds the merged weights.

`sft_config` is the run's settings; `ask`, `score` and `base_vs_assistant` are what a page shows after it: the
model's answer to a question (greedy, so it is the same every time), how often it is right on the held-out
exchanges, and the same question put to the model before and after.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import torch

from engine.post_training.chat_template import END, SPECIAL_NAMES, USER, answer_from, render, shown
from engine.post_training.instructions import KINDS, Exchange, bundled
from engine.train.config import PRESETS, TrainConfig
from engine.transform.model import GPT
from engine.transform.tokenization import Tokenizer

SFT_LR, LORA_LR = 5e-4, 4e-3  # a sixth of pre-training's peak for full SFT; LoRA's few weights take larger steps
SFT_STEPS = 200  # about six passes over the 1,080 training exchanges: the held-out loss has flattened by then
EVAL_EVERY = 20  # steps between the two losses' evaluations
ANSWER_TOKENS = 40  # the longest answer `ask` lets a model write


def sft_config(steps: int = SFT_STEPS, lora_rank: int = 0, base: TrainConfig | None = None) -> TrainConfig:
    """An SFT run's settings: the lesson preset's model (the checkpoint's shape wins anyway), AdamW at a fine-tune's
    learning rate, a short warm-up, the loss on answers, samples that answer a held-out question. Counted in steps,
    not seconds: a few passes over the exchanges is what SFT wants, and a fast machine given a minute would go over
    them dozens of times, memorising them (the held-out loss turns up) and forgetting much of its Shakespeare."""
    base = base or PRESETS["lesson"]
    question = bundled().validation[0].question
    return replace(base, optimizer="adamw", lr=LORA_LR if lora_rank else SFT_LR, warmup_steps=10, min_lr_frac=0.1,
                   sft=True, lora_rank=lora_rank, time_budget=None, max_steps=int(steps), eval_interval=EVAL_EVERY,
                   eval_every_s=None, sample_every_s=None, record_every_s=None, sample_interval=steps // 4,
                   sample_prompt=render(question), sample_tokens=24)


@torch.no_grad()
def ask(model: GPT, tokenizer: Tokenizer, question: str, max_tokens: int = ANSWER_TOKENS) -> tuple[str, bool]:
    """The model's answer to `question` put in the template, greedy (the most likely token each time), and whether
    it ended its answer with `<|end|>` by itself. Stops at `<|end|>` or a new `<|user|>`."""
    model.eval()
    ids = tokenizer.encode(render(question))
    written = _greedy(model, ids, max_tokens, stop={tokenizer.encode(END)[0], tokenizer.encode(USER)[0]})
    return answer_from(tokenizer.decode(written))


@torch.no_grad()
def continue_plain(model: GPT, tokenizer: Tokenizer, text: str, max_tokens: int = ANSWER_TOKENS) -> str:
    """What a model writes after `text` with no template (greedy): a base model's way with a question."""
    model.eval()
    return shown(tokenizer.decode(_greedy(model, tokenizer.encode(text), max_tokens, stop=set())))


def _greedy(model: GPT, ids: list[int], max_tokens: int, stop: set[int]) -> list[int]:
    device = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    written: list[int] = []
    for _ in range(max_tokens):
        logits = model(x[:, -model.config.block_size:])[0]  # (1, T, V)
        nxt = int(logits[0, -1, :model.config.vocab_size].argmax())
        written.append(nxt)
        if nxt in stop:
            break
        x = torch.cat([x, torch.tensor([[nxt]], device=device)], dim=1)  # (1, T + 1)
    return written


@torch.no_grad()
def ask_many(model: GPT, tokenizer: Tokenizer, questions: list[str],
             max_tokens: int = ANSWER_TOKENS) -> list[tuple[str, bool]]:
    """`ask` for many questions at once, the same greedy answers: questions whose prompts are the same number of
    tokens go through the model together (the same positions, so no padding changes what any of them reads), and
    a batch stops once every row has ended. A page scoring 120 questions waits one batch per prompt length instead
    of one pass per question."""
    model.eval()
    device = next(model.parameters()).device
    stop = {tokenizer.encode(END)[0], tokenizer.encode(USER)[0]}
    prompts = [tokenizer.encode(render(q)) for q in questions]
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, ids in enumerate(prompts):
        by_length[len(ids)].append(i)
    written: list[list[int]] = [[] for _ in questions]
    for rows in by_length.values():
        x = torch.tensor([prompts[i] for i in rows], dtype=torch.long, device=device)  # (G, T) one prompt length
        done = [False] * len(rows)
        for _ in range(max_tokens):
            logits = model(x[:, -model.config.block_size:])[0]  # (G, T, V)
            nxt = logits[:, -1, :model.config.vocab_size].argmax(dim=-1)  # (G,)
            for j, token in enumerate(nxt.tolist()):
                if not done[j]:
                    written[rows[j]].append(token)
                    done[j] = token in stop
            if all(done):
                break
            x = torch.cat([x, nxt.unsqueeze(1)], dim=1)  # (G, T + 1)
    return [answer_from(tokenizer.decode(ids)) for ids in written]


@dataclass(frozen=True)
class KindScore:
    """How a model does on one kind of held-out exchange."""

    kind: str
    title: str
    right: int  # answers exactly right (for a_line: a line of the right character is not checkable, so 0)
    ended: int  # answers closed with <|end|> by the model itself
    total: int


def score(model: GPT, tokenizer: Tokenizer, exchanges: tuple[Exchange, ...] | None = None) -> list[KindScore]:
    """Per kind of exchange: how many held-out answers are exactly right and how many the model ended by itself.
    `a_line` asks for any line of a character, so only its ending is counted."""
    exchanges = bundled().validation if exchanges is None else exchanges
    right: dict[str, int] = defaultdict(int)
    ended: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for ex, (answer, closed) in zip(exchanges, ask_many(model, tokenizer, [e.question for e in exchanges]),
                                    strict=True):
        total[ex.kind] += 1
        ended[ex.kind] += closed
        right[ex.kind] += closed and ex.kind != "a_line" and answer.strip() == ex.answer
    return [KindScore(k, KINDS[k], right[k], ended[k], total[k]) for k in KINDS if total[k]]


@dataclass(frozen=True)
class SideBySide:
    question: str
    base: str  # what the pre-trained model wrote after the question as plain text
    assistant: str  # the fine-tuned model's answer
    assistant_ended: bool
    expected: str | None  # the instruction set's answer, where the question is one of its exchanges


def base_vs_assistant(base: tuple[GPT, Tokenizer], assistant: tuple[GPT, Tokenizer], question: str,
                      expected: str | None = None) -> SideBySide:
    """The same question to the model before SFT (as plain text: it has no special tokens) and after (in the
    template)."""
    if any(ch in SPECIAL_NAMES for ch in question):
        raise ValueError("a question may not hold a special token's character")
    base_model, base_tok = base
    known = "".join(ch if ch in getattr(base_tok, "stoi", {ch: 0}) else "?" for ch in question)
    plain = continue_plain(base_model, base_tok, known + "\n")
    answer, ended = ask(*assistant, question)
    return SideBySide(question, plain, answer, ended, expected)
