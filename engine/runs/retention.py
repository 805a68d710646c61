"""Retention: how many old run folders stay on disk, decided from what the folders themselves say.

The run manager calls `prune_runs` when a new run is about to use disk; docs/retention.md says what is kept, for
how long, and what is never deleted (a folder a learner still points at, a run being trained, one changed in the
last hour, anything that does not look like a run folder).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from engine.load import checkpoint

KEEP_RUNS = 50  # run folders kept at most (newest first), besides protected ones
MAX_AGE_DAYS = 30.0  # older unprotected folders go even under that count
GRACE_S = 3600.0  # a folder changed this recently is never deleted: a training process may still be writing it
_RUN_FILES = (checkpoint.SUMMARY, checkpoint.METRICS, checkpoint.CONFIG, checkpoint.CKPT)


def prune_runs(runs_root: Path | str, protected: Iterable[Path | str] = (), keep: int = KEEP_RUNS,
               max_age_days: float = MAX_AGE_DAYS, grace_s: float = GRACE_S,
               now: float | None = None) -> list[Path]:
    """Delete old run folders under `runs_root`; return the ones deleted (docs/retention.md, "Runs").

    Never deleted: a folder in `protected` (the caller passes every folder a learner's progress still points at
    and every run the manager is training), one changed in the last `grace_s` seconds, and anything that does
    not look like a run folder. Of the rest, a folder goes when it is older than `max_age_days` or when more
    than `keep` folders are newer than it.
    """
    root = Path(runs_root)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    keep_safe = {Path(p).resolve() for p in protected}
    folders = []
    for d in root.iterdir():
        if d.is_dir() and not d.is_symlink() and any((d / name).exists() for name in _RUN_FILES):
            folders.append((max((d / n).stat().st_mtime for n in (".", *_RUN_FILES) if (d / n).exists()), d))
    folders.sort(reverse=True)  # newest first
    deleted = []
    for rank, (mtime, d) in enumerate(folders):
        age = now - mtime
        if d.resolve() in keep_safe or age < grace_s:
            continue
        if rank >= keep or (math.isfinite(max_age_days) and age > max_age_days * 86400):
            shutil.rmtree(d, ignore_errors=True)
            deleted.append(d)
    return deleted
