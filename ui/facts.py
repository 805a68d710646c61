"""Numbers from the learner's own work that quiz questions can ask about (`answer_from` in a quiz file).

Widgets save what they measured in the progress store (for example the training widget saves its run summary
under `run.summary`); this module turns those saved values into the facts named in `course.widgets.LEARNER_FACTS`.
"""

from __future__ import annotations

from typing import Any

from ui import session

RUN_SUMMARY_KEY = "run.summary"


def facts_from_run_summary(summary: dict[str, Any] | None) -> dict[str, float]:
    if not summary:
        return {}
    out: dict[str, float] = {}
    start, final = summary.get("start_val_loss"), summary.get("final_val_loss")
    if start is not None:
        out["run.start_loss"] = float(start)
    if final is not None:
        out["run.final_val_loss"] = float(final)
    if start is not None and final is not None:
        out["run.val_loss_drop"] = float(start) - float(final)
    return out


def learner_facts(learner_id: int) -> dict[str, float]:
    return facts_from_run_summary(session.store().fact(learner_id, RUN_SUMMARY_KEY))
