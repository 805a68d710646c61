"""Shared fixtures for the engine tests: one CPU thread, a small corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

CORPUS = Path(__file__).resolve().parents[2] / "data" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def one_thread():
    """Toy models train faster on one thread, and a second one stalls badly when other test processes share
    the machine's cores. Restored afterwards so other tests see torch as they found it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def small_text() -> str:
    """The first 20,000 characters of tiny Shakespeare: 18,000 to train on, 2,000 to validate."""
    return CORPUS.read_text(encoding="utf-8")[:20_000]
