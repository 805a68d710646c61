"""Training data for supervised fine-tuning: whole templated exchanges, the loss on the answers only.

Pre-training cuts random windows out of one long text (engine.transform.data.TextDataset). An instruction set is
different: each example is one exchange, `<|user|>question<|assistant|>answer<|end|>`, and a window that starts in
the middle of an answer would teach the model to answer questions it never saw. So a batch here is whole
examples, each from its `<|user|>`, padded on the right to the batch's longest (the causal mask keeps real tokens
from seeing the padding, and padding is never a target), with the targets of the question's positions set to
IGNORE: the model is graded only on what it should write. The training loop, its evaluations and the run manager
use it exactly as they use a TextDataset (`get_batch`, `train`, `val`): prepare() picks it for an SFT run.

The run's text is the templated examples one after another; the last `val_fraction` of them are held out, as the
last tenth of a corpus is for pre-training (engine.post_training.instructions puts its held-out questions there).
"""

from __future__ import annotations

import torch

from engine.post_training.chat_template import ASSISTANT, END, IGNORE, USER
from engine.transform.tokenization import Tokenizer


def split_exchanges(text: str) -> list[str]:
    """The templated exchanges in a run's text, each from its `<|user|>` to its `<|end|>` (text outside them is
    refused: an SFT run's text is made by the template, nothing else).

    >>> from engine.post_training.chat_template import render
    >>> len(split_exchanges(render("a", "b") + render("c", "d")))
    2
    """
    pieces = [p for p in text.split(USER) if p]
    if not pieces or text[:1] != USER:
        raise ValueError("an SFT run's text must be templated exchanges, each starting with <|user|>")
    exchanges = []
    for piece in pieces:
        if not piece.endswith(END) or piece.count(END) != 1:
            raise ValueError("every exchange of an SFT run's text must end with one <|end|>")
        exchanges.append(USER + piece)
    return exchanges


def held_out_count(n_examples: int, val_fraction: float = 0.1) -> int:
    """How many of `n_examples` exchanges are held out for validation: the last tenth, at least one.

    >>> held_out_count(300), held_out_count(5)
    (30, 1)
    """
    if n_examples < 2:
        raise ValueError("an SFT run needs at least two exchanges: one to train on, one to validate with")
    return max(1, round(n_examples * val_fraction))


class DialogueDataset:
    """Templated exchanges encoded once, split into train and validation examples; batches of whole examples."""

    def __init__(self, text: str, tokenizer: Tokenizer, val_fraction: float = 0.1):
        self.tokenizer = tokenizer
        exchanges = split_exchanges(text)
        n_val = held_out_count(len(exchanges), val_fraction)
        examples: list[tuple[list[int], list[int]]] = []
        assistant_id = tokenizer.encode(ASSISTANT)[0]
        for exchange in exchanges:
            ids = tokenizer.encode(exchange)
            if assistant_id not in ids:
                raise ValueError("every exchange of an SFT run's text needs an <|assistant|> turn")
            answer_from = ids.index(assistant_id)  # the first target trained on is the token after it
            targets = [IGNORE if i < answer_from else t for i, t in enumerate(ids[1:])]
            examples.append((ids[:-1], targets))
        self.examples = {"train": examples[:-n_val], "val": examples[-n_val:]}
        # the splits as one row of ids each, like TextDataset's (a run's token count and its baselines read them)
        self.train = torch.tensor([i for x, y in self.examples["train"] for i in x + y[-1:]], dtype=torch.long)
        self.val = torch.tensor([i for x, y in self.examples["val"] for i in x + y[-1:]], dtype=torch.long)

    def split(self, name: str) -> torch.Tensor:
        if name not in self.examples:
            raise ValueError(f"split must be 'train' or 'val', not {name!r}")
        return self.train if name == "train" else self.val

    def to_device(self, device: torch.device | str) -> None:
        """Nothing to move: batches are built on the host from lists (they are small) and copied per step."""

    def check_block_size(self, block_size: int) -> None:
        """Refuse an exchange longer than the model's context: it could not be trained on whole."""
        for name, examples in self.examples.items():
            longest = max(len(x) for x, _ in examples)
            if longest > block_size:
                raise ValueError(f"an exchange in the {name} split is {longest + 1} tokens long, but the model reads "
                                 f"{block_size + 1} at most (block_size + 1): shorten it")

    def get_batch(self, split: str, batch_size: int, block_size: int, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """`batch_size` random whole examples of `split`: inputs x and targets y, both (B, T), T the longest example
        drawn (at most `block_size`); padding is token 0 in x and IGNORE in y, and so are the question's targets."""
        examples = self.examples[split]
        picks = torch.randint(len(examples), (batch_size,), generator=generator).tolist()  # (B,) example indices
        longest = min(block_size, max(len(examples[i][0]) for i in picks))
        x = torch.zeros((batch_size, longest), dtype=torch.long)  # (B, T) inputs, 0-padded on the right
        y = torch.full((batch_size, longest), IGNORE, dtype=torch.long)  # (B, T) targets, IGNORE where not graded
        for row, i in enumerate(picks):
            inputs, targets = examples[i]
            x[row, :len(inputs)] = torch.tensor(inputs[:longest])
            y[row, :len(targets)] = torch.tensor(targets[:longest])
        return x.to(device), y.to(device)
