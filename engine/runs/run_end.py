"""What the run manager leaves behind when a run ends: a folder that tells how it ended, even if the run could not.

A worker writes summary.json itself when it ends normally. When it could not (it was killed past its deadline,
ran out of memory, failed to start), the folder would still say "running" or nothing at all, and once the manager
forgets the run (ended runs leave its memory after a while) a page would read "interrupted". So the manager
writes the end it saw into summary.json, keeping what the run had written, and reads back whether Resume can
continue it (engine.runs.snapshot.resumable: any readable checkpoint of a run that ended early).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from engine.files import write_text
from engine.load import checkpoint
from engine.runs.snapshot import resumable, saved_step
from engine.train.status import RunStatus

log = logging.getLogger(__name__)


def deadline_message(step: int | None, deadline_s: float) -> str:
    """What a learner reads about a run stopped at its deadline (its budget plus the margin for starting up).

    >>> deadline_message(120, 180.0)
    'This run was still going 3 minutes after it started, past its time budget, so the course stopped it. Its checkpoint from step 120 is saved: you can resume from there.'
    """
    span = f"{deadline_s / 60:g} minutes" if deadline_s >= 60 else f"{deadline_s:g} seconds"
    saved = (f"Its checkpoint from step {step:,} is saved: you can resume from there." if step is not None
             else "It had not saved a checkpoint yet, so nothing of it was kept.")
    return f"This run was still going {span} after it started, past its time budget, so the course stopped it. {saved}"


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        summary = json.loads((run_dir / checkpoint.SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def settle_folder(run_dir: Path | str, status: RunStatus, message: str) -> tuple[int | None, bool]:
    """Make the folder's summary.json say how the run ended, if the run did not; return (the step its checkpoint
    holds, whether it can be resumed). A folder that cannot be written is left as it is (logged)."""
    run_dir = Path(run_dir)
    summary = _read_summary(run_dir)
    if summary is None or RunStatus.parse(summary.get("status"), RunStatus.RUNNING).active:
        settled = {**(summary or {}), "status": str(status), "message": message}
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text(run_dir / checkpoint.SUMMARY, json.dumps(settled, indent=2))
        except OSError as err:
            log.warning("could not record how run %s ended: %s", run_dir, err)
    return saved_step(run_dir), resumable(status, run_dir)
