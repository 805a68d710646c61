"""The learner's training runs as the pages see them: the engine's run snapshot plus the learner's name for it.

Each learner has named runs (`main` for their lesson run, `diverge` for the too-high-learning-rate demo, ...).
Which run a name points at is saved in the progress store (a fact `run.<name>`), so the run is found again after a
page switch, a reload or a server restart, and so every run a learner has can be listed (the sidebar heartbeats
them all, whatever widget started them). A run this server trains is read from the run manager; any other from its
folder (engine.runs.snapshot.snapshot_from_folder), which says "interrupted" for a run the server died under.
Each run's folder also records which corpus and cleaning made its text (engine.runs.run_source), so Resume
continues on that text, built again, or refuses and says why. Every run is submitted as its learner's, so the
class's fair queue counts it; when they already hold as many as they may, nothing changes and the page says why.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import streamlit as st

from engine.load import checkpoint
from engine.runs import run_source
from engine.runs.manager import QueueFull, get_manager
from engine.runs.snapshot import RunSnapshot, snapshot_from_folder
from engine.train.config import TrainConfig
from engine.train.status import RunStatus
from engine.transform.tokenization import Tokenizer
from ui import learner_corpus, session

log = logging.getLogger(__name__)

FACT_PREFIX = "run."  # progress-store facts that name a learner's run: run.main, run.diverge, ...


@dataclass(frozen=True, init=False)
class RunView(RunSnapshot):
    """A RunSnapshot (engine.runs.snapshot) plus the learner's name for the run and whether this server trains it.

    Written like a snapshot with the run key first: `RunView("main", run_id, run_dir, status, metrics, samples, ...)`;
    `RunView.of(run_key, snapshot)` wraps one the engine made.
    """

    run_key: str = ""
    live: bool = False  # True while the run manager of this server process knows the run

    def __init__(self, run_key: str, *args: Any, live: bool = False, **snapshot_fields: Any) -> None:
        RunSnapshot.__init__(self, *args, **snapshot_fields)
        object.__setattr__(self, "run_key", run_key)
        object.__setattr__(self, "live", live)

    @classmethod
    def of(cls, run_key: str, snap: RunSnapshot, live: bool = False) -> RunView:
        return cls(run_key, live=live, **{f.name: getattr(snap, f.name) for f in fields(RunSnapshot)})


def _fact_key(run_key: str) -> str:
    return f"{FACT_PREFIX}{run_key}"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=32)
def _folder_snapshot(run_dir: str, run_id: str, label: str, stamp: tuple[float, ...]) -> RunSnapshot:
    """Reading a folder parses metrics.jsonl: done again only when its files change (`stamp`), not on every poll."""
    return snapshot_from_folder(run_dir, run_id, label)


def _view(run_key: str, info: dict[str, Any], history: bool = True) -> RunView:
    """`history` False: the newest record and sample only, for a listing (a run read from its folder has them all).
    The run's folder goes with the id, so a server on Ray follows a run it did not start."""
    try:
        snap, live = get_manager().snapshot(info["run_id"], history=history, run_dir=info.get("run_dir")), True
    except KeyError:  # not in this server process: read what the run left on disk
        run_dir = Path(info["run_dir"])
        stamp = tuple(_mtime(run_dir / n) for n in (checkpoint.SUMMARY, checkpoint.METRICS, checkpoint.CKPT))
        snap, live = _folder_snapshot(str(run_dir), info["run_id"], info.get("label", ""), stamp), False
    if snap.resumable and resume_refusal(run_key, snap.run_id):  # its text is gone: no Resume button that fails
        snap = replace(snap, resumable=False)
    return RunView.of(run_key, snap, live=live)


def load(learner_id: int, run_key: str) -> RunView | None:
    info = session.store().fact(learner_id, _fact_key(run_key))
    return _view(run_key, info) if info else None


def _protected_folders() -> list[str]:
    """Every run folder some learner's progress still points at: retention must keep them."""
    return [info["run_dir"] for _, _, info in session.store().facts_of_everyone_with_prefix(FACT_PREFIX)
            if isinstance(info, dict) and "run_dir" in info]


def start(learner_id: int, run_key: str, config: TrainConfig, text: str, label: str,
          tokenizer: Tokenizer | None = None, resume_from: str | Path | None = None,
          finetune_from: str | Path | None = None, original_text: str | None = None,
          corpus: tuple[str | None, dict | None, str] | None = None, batch: str | None = None,
          processes: int = 1) -> str | None:
    """Submit a run for this learner under `run_key`, replacing (and stopping) the one it pointed at once the new
    one is in the queue; its id, or None when the queue refused it (engine.runs.manager.QueueFull: the learner holds
    as many runs as they may): then `run_key` still points at the run it did, which trains on, and
    `queue_refusal(run_key)` says why, for the page.

    `tokenizer` None: a character tokenizer of `text` (or, with `resume_from` or `finetune_from`, the
    checkpoint's). `finetune_from`: a run folder whose model this new run trains further on `text`, with
    `original_text` (the corpus that model learned) evaluated beside it (engine.train.finetune); recorded like any
    learner run, so the sidebar lists it and a restart finds it again. The run's folder records what `text` is
    (engine.runs.run_source): `corpus` (corpus id, cleaning options, title) when the caller knows, else what
    learner_corpus.source_of finds. `batch`: runs asked for together (a comparison's two, a sweep's sizes) pass the
    same one and count as one waiting request. `processes` > 1: one run trained by that many processes together
    (data parallel, engine.runs.ranks)."""
    old = load(learner_id, run_key)
    if old is not None and old.live and old.status == RunStatus.QUEUED:  # it never started: nothing of it is lost
        get_manager().stop(old.run_id)
    try:
        run_id = get_manager().submit(config, text, tokenizer=tokenizer, label=label, resume_from=resume_from,
                                      protected=_protected_folders(), finetune_from=finetune_from,
                                      original_text=original_text, owner=str(learner_id), batch=batch,
                                      processes=processes)
    except QueueFull as err:  # the run that trains under this key goes on
        _queue_full()[run_key] = str(err)
        return None
    if old is not None and old.live and old.active:  # replaced only once its successor is in the queue
        get_manager().stop(old.run_id)
    _queue_full().pop(run_key, None)
    run_dir = get_manager().snapshot(run_id).run_dir
    session.store().set_fact(learner_id, _fact_key(run_key),
                             {"run_id": run_id, "run_dir": run_dir, "created_at": time.time(), "label": label})
    _refusals().pop(run_key, None)
    _record_source(learner_id, run_dir, text, corpus)
    return run_id


def _record_source(learner_id: int, run_dir: str, text: str,
                   corpus: tuple[str | None, dict | None, str] | None) -> None:
    """Write the run's source.json: the corpus and cleaning that make `text`, when the course can build it again
    (learner_corpus.source_of), and its hash in any case. A run whose record could not be written still trains;
    a resume of it then cannot check its text and continues on the page's, as for an older folder."""
    try:
        found = corpus if corpus is not None else learner_corpus.source_of(learner_id, text)
        corpus_id, cleaning, title = found if found is not None else (None, None, "")
        run_source.record(run_dir, corpus_id, cleaning, text, title=title)
    except Exception as err:  # noqa: BLE001 - the run is queued and the learner's: it must not fail here
        log.warning("could not record the corpus of the run in %s: %s", run_dir, err)


MIN_RESUME_BUDGET_S = 10.0  # a resumed timed run trains at least this long, even if its budget was nearly spent


def resume_config(run: RunSnapshot) -> TrainConfig:
    """The config a resumed run trains with: the run's own, and for a timed run the part of its time budget it had
    not used yet, so Resume finishes the run the learner started rather than starting another full one.

    >>> snap = RunSnapshot("r", "d", "stopped", [{"step": 40, "elapsed_s": 21.5}], config={"time_budget": 60.0})
    >>> resume_config(snap).time_budget
    38.5
    """
    config = TrainConfig.from_dict(run.config)
    if config.time_budget is not None:
        used = (run.metrics[-1].get("elapsed_s") or 0.0) if run.metrics else 0.0
        config = replace(config, time_budget=max(MIN_RESUME_BUDGET_S, config.time_budget - used))
    return config


def resume_text(learner_id: int, run: RunSnapshot, text: str | None = None) -> tuple[str | None, str | None]:
    """(the text a resume of `run` trains on, None) or (None, why there is none, for the learner).

    The text the run trained on, built again from the corpus id and cleaning its folder recorded
    (engine.runs.run_source) and checked against the recorded hash. A folder from before runs recorded their
    corpus resumes on `text`, the learner's current text, as it always did; so does a run whose text the course
    cannot build by name (a slice, a deduplicated copy) when `text` is that text."""
    source = run_source.read(run.run_dir)
    if source is None:
        return (text, None) if text is not None else (None, "This run did not record the text it trained on.")
    candidate = text
    if source.corpus_id is not None:
        try:
            candidate = learner_corpus.rebuild(learner_id, source.corpus_id, source.cleaning)
        except KeyError:
            what = f"“{source.title}”" if source.title else f"the corpus {source.corpus_id}"
            return None, (f"This run trained on {what}, which is no longer on the server (an upload not saved again "
                          "for 90 days is removed, and only your 10 newest are kept). Resuming would continue on "
                          "other text, so start a new run instead; this one stays as it is.")
        except (TypeError, ValueError):
            return None, ("This run's cleaning options cannot be applied any more, so the text it trained on cannot "
                          "be built again. Start a new run instead; this one stays as it is.")
    if candidate is None:
        return None, "This run trained on a text the course cannot build again: start a new run instead."
    problem = run_source.check(run.run_dir, candidate)
    return (None, problem) if problem else (candidate, None)


def resume(learner_id: int, run: RunView, text: str | None = None) -> str | None:
    """Continue `run` from its checkpoint under the same run key (a new folder that starts with its history), for
    the rest of its budget (`resume_config`), on the text it trained on (`resume_text`; `text`, the learner's
    current one, only for a folder that recorded none). None if it cannot be resumed: not resumable, or its text
    cannot be built again (then `resume_refusal` says why), or the queue is full for this learner (then
    `queue_refusal`); the page shows it, and the run is left as it was."""
    if not run.resumable or run.active:
        return None
    train_text, problem = resume_text(learner_id, run, text)
    if train_text is None:
        _refusals()[run.run_key] = (run.run_id, problem or "This run cannot be resumed.")
        return None
    source = run_source.read(run.run_dir)  # carried over, so the resumed run resumes on the same text again
    return start(learner_id, run.run_key, resume_config(run), train_text, run.label or "resumed run",
                 resume_from=run.run_dir,
                 corpus=(source.corpus_id, source.cleaning, source.title) if source is not None else None)


_REFUSED_KEY = "runs-resume-refused"  # a plain session key: run key -> (run id, why its Resume was refused)


def _refusals() -> dict[str, tuple[str, str]]:
    return st.session_state.setdefault(_REFUSED_KEY, {})


def resume_refusal(run_key: str, run_id: str) -> str | None:
    """Why this session's Resume of the run was refused (its text could not be built again), else None."""
    refused = st.session_state.get(_REFUSED_KEY, {}).get(run_key)
    return refused[1] if refused and refused[0] == run_id else None


_QUEUE_FULL_KEY = "runs-queue-full"  # a plain session key: run key -> why the queue refused its latest Start


def _queue_full() -> dict[str, str]:
    return st.session_state.setdefault(_QUEUE_FULL_KEY, {})


def queue_refusal(run_key: str) -> str | None:
    """Why this session's latest start of a run under `run_key` was refused by the queue (the message is written
    for the learner), else None."""
    return st.session_state.get(_QUEUE_FULL_KEY, {}).get(run_key)


def forget_queue_refusal(run_key: str) -> None:
    """The page has shown the refusal: it answered that one press of the button, not the next."""
    st.session_state.get(_QUEUE_FULL_KEY, {}).pop(run_key, None)


def pool_limits() -> tuple[int, int]:
    """(runs this server trains at once, runs one learner may have training at once): why a run waits."""
    manager = get_manager()
    return manager.max_concurrent, manager.settings.running_per_learner


def stop(run: RunView, learner_id: int | None = None) -> None:
    """Stop a run the learner sees; the manager refuses one that is not theirs (a run key names only the learner's
    own runs, and this checks again where the run lives)."""
    if run.live and run.active:
        get_manager().stop(run.run_id, owner=None if learner_id is None else str(learner_id))


def heartbeat(run: RunView) -> None:
    if run.live and run.active:
        get_manager().heartbeat(run.run_id)


def learner_runs(learner_id: int, history: bool = False) -> list[RunView]:
    """Every run the learner has, under whatever key a widget started it, live or from disk. A listing: each live
    run with its newest record and sample only, unless `history` (its whole curve, for a chart)."""
    facts = session.store().facts_with_prefix(learner_id, FACT_PREFIX)
    return [_view(key.removeprefix(FACT_PREFIX), info, history) for key, info in facts.items()
            if isinstance(info, dict) and "run_id" in info]


def active_runs(learner_id: int) -> list[RunView]:
    return [r for r in learner_runs(learner_id) if r.active]


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
