"""The learner's training runs as the pages see them: live from the run manager, or from disk after a restart.

Each learner has named runs (`main` for their lesson run, `diverge` for the too-high-learning-rate demo, ...).
Which run a name points at is saved in the progress store, so the run is found again after a page switch, a reload
or a server restart (then from its folder: metrics.jsonl and summary.json, since the thread is gone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from engine import checkpoint
from engine.config import TrainConfig
from engine.runs import TERMINAL, get_manager, read_run_summary
from engine.tokenization import Tokenizer
from ui import session

ACTIVE = ("queued", "running")
RUN_KEYS = ("main", "diverge", "bpe", "dedup-with", "dedup-without")  # every named run a widget may start


@dataclass(frozen=True)
class RunView:
    run_key: str
    run_id: str
    run_dir: str
    status: str  # engine statuses, plus "lost" (the server stopped mid-run and nothing was saved)
    metrics: list[dict[str, Any]]
    samples: list[tuple[int, str]]
    message: str = ""
    device_sentence: str = ""
    params: int | None = None
    queue_position: int | None = None
    eta_s: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    live: bool = False  # True while the run manager of this server process knows the run

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def evals(self) -> list[tuple[int, float]]:
        return [(r["step"], r["val_loss"]) for r in self.metrics if r.get("val_loss") is not None]

    @property
    def start_val_loss(self) -> float | None:
        evals = self.evals
        return evals[0][1] if evals and evals[0][0] == 0 else None

    @property
    def final_val_loss(self) -> float | None:
        evals = self.evals
        return evals[-1][1] if evals else None

    @property
    def step(self) -> int:
        return self.metrics[-1]["step"] if self.metrics else 0

    @property
    def tokens_per_s(self) -> float | None:
        return self.metrics[-1].get("tokens_per_s") if self.metrics else None


def _fact_key(run_key: str) -> str:
    return f"run.{run_key}"


def load(learner_id: int, run_key: str) -> RunView | None:
    info = session.store().fact(learner_id, _fact_key(run_key))
    if not info:
        return None
    try:
        snap = get_manager().snapshot(info["run_id"])
    except KeyError:  # not in this server process: read what the run left on disk
        return _from_disk(run_key, info)
    return RunView(run_key, snap.run_id, snap.run_dir, snap.status, snap.metrics, snap.samples, snap.message,
                   snap.device_sentence, snap.params, snap.queue_position, snap.eta_s, snap.config, live=True)


def _from_disk(run_key: str, info: dict[str, Any]) -> RunView:
    run_dir = Path(info["run_dir"])
    metrics = checkpoint.read_metrics(run_dir)
    samples = [(r["step"], r["sample"]) for r in metrics if "sample" in r]
    try:
        summary = read_run_summary(run_dir)
    except FileNotFoundError:
        return RunView(run_key, info["run_id"], str(run_dir), "lost", [], [],
                       "The course server was restarted while this run was training, before it could save. "
                       "Start a new run: it takes a minute.")
    status = summary.get("status") or "stopped"
    return RunView(run_key, info["run_id"], str(run_dir), status if status in TERMINAL else "stopped", metrics,
                   samples, summary.get("message", ""), summary.get("device", ""), summary.get("params"),
                   config=summary.get("config") or {})


def start(learner_id: int, run_key: str, config: TrainConfig, text: str, label: str,
          tokenizer: Tokenizer | None = None) -> str:
    """Submit a run for this learner under `run_key`, replacing (and stopping) the one it pointed at.

    `tokenizer` None: a character tokenizer of `text`."""
    old = load(learner_id, run_key)
    if old is not None and old.live and old.active:
        get_manager().stop(old.run_id)
    run_id = get_manager().submit(config, text, tokenizer=tokenizer, label=label)
    run_dir = get_manager().snapshot(run_id).run_dir
    session.store().set_fact(learner_id, _fact_key(run_key),
                             {"run_id": run_id, "run_dir": run_dir, "created_at": time.time(), "label": label})
    return run_id


def stop(run: RunView) -> None:
    if run.live and run.active:
        get_manager().stop(run.run_id)


def heartbeat(run: RunView) -> None:
    if run.live and run.active:
        get_manager().heartbeat(run.run_id)


def learner_runs(learner_id: int, run_keys: tuple[str, ...] = RUN_KEYS) -> list[RunView]:
    """Every named run the learner has, live or from disk."""
    return [r for r in (load(learner_id, k) for k in run_keys) if r is not None]


def active_runs(learner_id: int, run_keys: tuple[str, ...] = RUN_KEYS) -> list[RunView]:
    return [r for r in learner_runs(learner_id, run_keys) if r.active]


# ---- which runs the page already polls ---------------------------------------------------------------------
# Every fragment that polls costs the browser a redraw, and on a machine that trains while the learner watches,
# the browser's CPU time comes straight out of training (docs/training-notes.md). So a run that the page shows in
# a live panel of its own is not polled a second time by the sidebar. The page marks those runs during each full
# script run; the sidebar, drawn after the page, leaves them out.

_POLLED_KEY = "runs-polled-by-page"  # a plain session key: run ids the current page's fragments poll


def new_page_run() -> None:
    """A full script run begins: no page fragment polls any run yet."""
    st.session_state[_POLLED_KEY] = set()


def polled_by_page(run: RunView) -> None:
    """This page draws `run` in a fragment of its own that polls it (and sends its heartbeat)."""
    st.session_state.setdefault(_POLLED_KEY, set()).add(run.run_id)


def is_polled_by_page(run: RunView) -> bool:
    return run.run_id in st.session_state.get(_POLLED_KEY, set())
