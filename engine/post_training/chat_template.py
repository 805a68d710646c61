"""The chat template: how a conversation becomes the one string of tokens a chat model is trained on and reads.

A model only ever sees one row of token ids. To teach it turns ("the user said this, now you answer"), every
conversation is written out in a fixed pattern, the **template**, with **special tokens** marking where each turn
starts and ends. They are tokens of their own, outside the text's alphabet: no user can type one by accident, and
the model learns that `<|end|>` means "stop here", which is how a chat model knows when its answer is over.

This course's models read characters, so each special token is one new character the corpus never uses (from
Unicode's private-use area, U+E000 on), appended to the tokenizer: the old characters keep their ids, and the
model gets one new row in its token table per special token (`grow_token_table`). Pages show the tokens by name
(`shown`). The template:

    <|user|>Who says: Speak, speak.<|assistant|>All<|end|>

Only the answer and its `<|end|>` are trained on (`example_ids`): the question is context, not something the model
should learn to write. Real templates (ChatML's `<|im_start|>user ... <|im_end|>`, Llama's headers) are longer
but work the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.transform.model import GPT
from engine.transform.tokenization import CharTokenizer, Tokenizer

USER, ASSISTANT, END = "\ue000", "\ue001", "\ue002"  # the special tokens' characters, never in a corpus
SPECIAL_NAMES = {USER: "<|user|>", ASSISTANT: "<|assistant|>", END: "<|end|>"}
IGNORE = -100  # a target the loss skips (torch's cross_entropy ignore_index default)


@dataclass(frozen=True)
class TemplateToken:
    """One position of a templated example, for the page's table: what the model reads there, what it is asked
    to predict next, and whether that prediction counts in the loss."""

    position: int
    token: str  # shown: a special token by name
    token_id: int
    special: bool
    target: str  # the next token, shown ("" at the last position)
    trained: bool  # does predicting `target` count in the loss?


def render(question: str, answer: str | None = None) -> str:
    """One exchange in the template; `answer` None: the prompt a model answers (it ends with `<|assistant|>`).

    >>> shown(render("Hi?", "Hello."))
    '<|user|>Hi?<|assistant|>Hello.<|end|>'
    >>> shown(render("Hi?"))
    '<|user|>Hi?<|assistant|>'
    """
    for text in (question, answer or ""):
        if any(ch in SPECIAL_NAMES for ch in text):
            raise ValueError("the text holds a special token's character; only the template may place them")
    prompt = f"{USER}{question}{ASSISTANT}"
    return prompt if answer is None else f"{prompt}{answer}{END}"


def shown(text: str) -> str:
    """`text` with each special token written by name, for a page."""
    return "".join(SPECIAL_NAMES.get(ch, ch) for ch in text)


def with_special_tokens(tokenizer: Tokenizer) -> CharTokenizer:
    """`tokenizer` with the three special tokens appended (the old ids unchanged); the same tokenizer if it has them.

    >>> tok = with_special_tokens(CharTokenizer.from_text("ab"))
    >>> tok.vocab_size, tok.encode(render("a", "b"))
    (5, [2, 0, 3, 1, 4])
    """
    if not isinstance(tokenizer, CharTokenizer):
        raise ValueError("supervised fine-tuning here needs a character-level model (the course's default); this "
                         f"model's tokenizer is {tokenizer.kind!r}")
    missing = [ch for ch in SPECIAL_NAMES if ch not in tokenizer.stoi]
    return CharTokenizer(tokenizer.chars + missing) if missing else tokenizer


def example_ids(tokenizer: Tokenizer, question: str, answer: str) -> tuple[list[int], list[int]]:
    """One training example: the templated exchange's ids, and each position's target (the next id), IGNORE where
    the next token is part of the prompt. Trained on: every answer token and the `<|end|>` after it.

    >>> tok = with_special_tokens(CharTokenizer.from_text("ab"))
    >>> example_ids(tok, "a", "b")  # reads <|user|> a <|assistant|> b; predicts a, <|assistant|>, b, <|end|>
    ([2, 0, 3, 1], [-100, -100, 1, 4])
    """
    ids = tokenizer.encode(render(question, answer))
    prompt_len = len(tokenizer.encode(render(question)))
    inputs, targets = ids[:-1], ids[1:]
    targets = [IGNORE if i < prompt_len - 1 else t for i, t in enumerate(targets)]
    return inputs, targets


def template_table(tokenizer: Tokenizer, question: str, answer: str) -> list[TemplateToken]:
    """The show-me view of one example: every position, its token and id, the token it should predict and whether
    that counts in the loss, for the page's table."""
    inputs, targets = example_ids(tokenizer, question, answer)
    ids = inputs + [targets[-1]]
    rows = []
    for pos, token_id in enumerate(ids):
        ch = tokenizer.decode([token_id])
        nxt = tokenizer.decode([ids[pos + 1]]) if pos + 1 < len(ids) else ""
        trained = pos < len(targets) and targets[pos] != IGNORE
        rows.append(TemplateToken(pos, shown(ch), token_id, ch in SPECIAL_NAMES, shown(nxt), trained))
    return rows


def answer_from(generated: str) -> tuple[str, bool]:
    """The answer in what a model wrote after `<|assistant|>`: the text up to its `<|end|>`, and whether it ended
    there (False: it ran on to the length limit, or began a new turn by itself)."""
    cut = min((i for i in (generated.find(END), generated.find(USER)) if i >= 0), default=-1)
    if cut < 0:
        return shown(generated), False
    return shown(generated[:cut]), generated[cut] == END


def sft_tokenizer(tokenizer: Tokenizer, source: object) -> CharTokenizer:
    """An SFT run's tokenizer: its checkpoint's, with the template's special tokens appended. SFT teaches a trained
    model a format, so a run without a checkpoint to start from (`source` None) is refused."""
    if source is None:
        raise ValueError("Supervised fine-tuning starts from a trained model: give the run a checkpoint to fine-tune.")
    return with_special_tokens(tokenizer)


def grow_token_table(saved: dict[str, torch.Tensor], model: GPT) -> dict[str, torch.Tensor]:
    """`saved` weights made to fit `model`'s bigger token table: each new row is the mean of the saved rows. The
    table is tied to the output head, so both names get the same rows. Unchanged when the sizes already match."""
    grown = dict(saved)
    rows = model.transformer.wte.weight.shape[0]
    for key in ("transformer.wte.weight", "lm_head.weight"):
        if key in saved and saved[key].shape[0] < rows:
            old = saved[key]  # (V_old, C)
            mean = old.mean(dim=0, keepdim=True).expand(rows - old.shape[0], -1)  # (V_new - V_old, C)
            grown[key] = torch.cat([old, mean], dim=0)  # (V_new, C)
    return grown
