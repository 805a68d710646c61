"""Training data for next-token prediction: a text becomes one long row of token ids, cut into random windows.

Works with any `Tokenizer` (characters or BPE): the text is encoded once into a 1-D tensor of ids, and the first
90% becomes the training split, the last 10% the validation split, as nanoGPT's `shakespeare_char/prepare.py`
does. Splitting by position (not by random windows) keeps validation text truly unseen: a random split would put
overlapping windows of the same passage on both sides.

A batch is `batch_size` windows of `block_size + 1` consecutive ids starting at random offsets: the inputs are
the first `block_size` ids, the targets the same window shifted left by one, so every position learns to predict
the token that follows it.
"""

from __future__ import annotations

import torch

from engine.transform.tokenization import Tokenizer


class TextDataset:
    """A text encoded once, split 90/10 into train and validation ids.

    >>> from engine.transform.tokenization import CharTokenizer
    >>> ds = TextDataset("abcdefghij" * 10, CharTokenizer.from_text("abcdefghij"))
    >>> len(ds.train), len(ds.val)
    (90, 10)
    """

    def __init__(self, text: str, tokenizer: Tokenizer, val_fraction: float = 0.1):
        if not 0.0 < val_fraction < 1.0:
            raise ValueError("val_fraction must be between 0 and 1")
        self.tokenizer = tokenizer
        ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)  # (N,)
        n_train = int(len(ids) * (1.0 - val_fraction))
        self.train = ids[:n_train]  # (N_train,) the first 90%
        self.val = ids[n_train:]  # (N_val,) the last 10%

    def to_device(self, device: torch.device | str) -> None:
        """Keep both splits on `device` (a GPU): batches are then cut there, with no host-to-device copy per step
        but the (B,) window starts."""
        self.train, self.val = self.train.to(device), self.val.to(device)

    def split(self, name: str) -> torch.Tensor:
        if name == "train":
            return self.train
        if name == "val":
            return self.val
        raise ValueError(f"split must be 'train' or 'val', not {name!r}")

    def check_block_size(self, block_size: int) -> None:
        """Raise a plain error if either split is too short to cut even one window from."""
        for name in ("train", "val"):
            n = len(self.split(name))
            if n < block_size + 2:
                raise ValueError(
                    f"The {name} split has only {n} tokens, but each training example needs {block_size + 1} "
                    f"(block_size + 1). Use a longer text or a smaller block_size."
                )

    def get_batch(
        self,
        split: str,
        batch_size: int,
        block_size: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch_size` random windows from `split`: inputs x and next-token targets y, both (B, T).

        Pass a seeded `generator` for repeatable batches.
        """
        data = self.split(split)
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,) window starts
        if data.device.type != "cpu":  # the ids live on the GPU (to_device): cut the windows there
            ix = ix.to(data.device, non_blocking=True)
        offsets = ix.unsqueeze(1) + torch.arange(block_size + 1, device=data.device)  # (B, 1) + (T+1,) -> (B, T+1)
        window = data[offsets]  # (B, T+1) token ids
        x = window[:, :-1].contiguous()  # (B, T)   ids 0 .. T-1 of each window
        y = window[:, 1:].contiguous()  # (B, T)   ids 1 .. T: the token after each input position
        if data.device.type != "cpu":
            return x.to(device), y.to(device)  # already there: no copy
        if torch.device(device).type == "cuda":
            # pinned memory + non_blocking lets the copy overlap with the GPU's work on the previous step
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)


def next_token_examples(
    text: str, tokenizer: Tokenizer, block_size: int = 8, n: int = 8
) -> list[tuple[str, str]]:
    """Show-me function: what the model is asked to learn, as (context, next token) text pairs.

    One window of `block_size + 1` tokens from the start of `text` yields `block_size` examples, one per
    position, each context one token longer than the last (as in Karpathy's "Let's build GPT").

    >>> from engine.transform.tokenization import CharTokenizer
    >>> next_token_examples("hello", CharTokenizer.from_text("hello"), block_size=4, n=3)
    [('h', 'e'), ('he', 'l'), ('hel', 'l')]
    """
    ids = tokenizer.encode(text)[: block_size + 1]
    pairs = [(tokenizer.decode(ids[: t + 1]), tokenizer.decode([ids[t + 1]])) for t in range(len(ids) - 1)]
    return pairs[:n]
