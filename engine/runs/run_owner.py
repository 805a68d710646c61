"""Whose run a folder is: the learner who asked for it, written into the folder when the run is queued.

A page only ever names runs through the learner's own progress, but the run manager checks again where a run
folder is used as the start of another run (Resume, fine-tune from): a folder that names another owner is refused
(PermissionError), so no route into the manager can continue or copy someone else's model. A folder written before
owners were recorded names none, and is taken as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.files import write_text

OWNER_FILE = "owner.json"


def record_owner(run_dir: Path | str, owner: str) -> None:
    """Write the run's owner into its folder (made if missing); nothing for a run without one (a script's)."""
    if owner:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        write_text(Path(run_dir) / OWNER_FILE, json.dumps({"owner": owner}) + "\n")


def folder_owner(run_dir: Path | str) -> str | None:
    """The owner a run folder names, None where it names none (or its file does not read)."""
    try:
        owner = json.loads((Path(run_dir) / OWNER_FILE).read_text(encoding="utf-8")).get("owner")
    except (OSError, ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


def check_owner(run_dir: Path | str, owner: str, what: str) -> None:
    """PermissionError if `run_dir` names an owner other than `owner` (who asks to `what` it).

    >>> import tempfile
    >>> d = tempfile.mkdtemp(); record_owner(d, "7"); check_owner(d, "7", "resume")
    >>> check_owner(d, "8", "resume")
    Traceback (most recent call last):
    ...
    PermissionError: this run is another learner's: it cannot be used to resume
    """
    named = folder_owner(run_dir)
    if owner and named is not None and named != owner:
        raise PermissionError(f"this run is another learner's: it cannot be used to {what}")


def check_sources(owner: str, resume_from: Path | str | None = None, finetune_from: Path | str | None = None) -> None:
    """The checks a new run's sources need: PermissionError if either names another owner."""
    if resume_from is not None:
        check_owner(resume_from, owner, "resume")
    if finetune_from is not None:
        check_owner(finetune_from, owner, "fine-tune from")
