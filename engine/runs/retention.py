"""Retention: which old run folders may go, decided from what the folders themselves say.

The run manager calls `prune_runs` when a new run is about to use disk. docs/retention.md says what is kept: at
most `KEEP_RUNS` folders, none unchanged for `MAX_AGE_DAYS`, `MAX_BYTES` in all, and never a folder still needed
(one a learner points at, one being trained, one a queued resume or fine-tune will read, one changed in the last
hour, anything that does not look like a run folder). A runs folder belongs to the progress database that first
pruned it (its `OWNER_FILE` names that database): a server keeping its progress elsewhere deletes nothing there,
since the runs its learners point at are invisible to it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import paths
from engine.files import write_text
from engine.load import checkpoint
from engine.runs.run_source import SOURCE_FILE

log = logging.getLogger(__name__)

KEEP_RUNS = 50  # run folders kept at most (newest first), besides protected ones
MAX_AGE_DAYS = 30.0  # older unprotected folders go even under that count
# All run folders together, since the count alone does not bound the disk: a GPU-preset folder weighs some twenty
# lesson-preset ones. 10 GB holds the 50 newest lesson runs several times over, or about 16 GPU runs
# (docs/retention.md has the sizes). $LLM_COURSE_RUNS_MAX_BYTES overrides it.
MAX_BYTES = 10 * 10**9
GRACE_S = 3600.0  # a folder changed this recently is never deleted: a training process may still be writing it
OWNER_FILE = ".owner.json"  # in the runs folder: the progress database whose learners' runs these are
# a run folder holds one of these (source.json alone: a run queued by a server that died before it started)
_RUN_FILES = (checkpoint.SUMMARY, checkpoint.METRICS, checkpoint.CONFIG, checkpoint.CKPT, SOURCE_FILE)
_warned: set[str] = set()  # what was already logged: one warning per cause and process, not one per run


def owner_identity(database: Path | str) -> str:
    """How a runs folder's marker names a progress database: a URL without its password, or a SQLite file's
    resolved path (so `data/../data/progress.sqlite3` and a symlink to it are the same owner).

    >>> owner_identity("postgresql://course:secret@db.local:5432/class")
    'postgresql://course@db.local:5432/class'
    """
    text = str(database)
    if "://" in text:
        parts = urlsplit(text)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
    return str(Path(text).expanduser().resolve())


def max_bytes_setting() -> float:
    """The cap on the runs folder's size: $LLM_COURSE_RUNS_MAX_BYTES (a number of bytes, or "inf" for none),
    else `MAX_BYTES`. A value that is not a positive number is ignored, with a warning."""
    value = os.environ.get(paths.RUNS_MAX_BYTES_VAR, "").strip()
    if not value:
        return MAX_BYTES
    try:
        cap = float(value)
    except ValueError:
        cap = -1.0
    if not cap > 0:
        _warn_once(f"setting {value}", f"{paths.RUNS_MAX_BYTES_VAR}={value!r} is not a positive number of bytes; "
                          f"using {MAX_BYTES:,}")
        return MAX_BYTES
    return cap


def read_owner(runs_root: Path | str) -> str | None:
    """The owner the runs folder's marker names, None without a readable marker."""
    try:
        owner = json.loads((Path(runs_root) / OWNER_FILE).read_text(encoding="utf-8")).get("owner")
    except (OSError, ValueError, AttributeError):
        return None
    return owner if isinstance(owner, str) else None


def claim(runs_root: Path | str, owner: str) -> str | None:
    """Make `owner` the runs folder's owner unless one is named already; return the owner the marker names after
    (None if it could not be written or read). Two servers claiming at once: the first link wins."""
    root = Path(runs_root)
    marker = root / OWNER_FILE
    if not marker.exists():
        note = ("The course server whose progress database is named here owns these runs: a server using another "
                "database never deletes them (docs/retention.md). Delete this file to hand the folder over.")
        body = json.dumps({"owner": owner, "claimed_at": time.time(), "note": note}, indent=2) + "\n"
        tmp = root / f".owner.{os.getpid()}.{time.monotonic_ns()}.json"
        try:
            write_text(tmp, body)
            try:
                os.link(tmp, marker)  # fails if a marker appeared meanwhile: the other claim stands
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links: a plain rename, which cannot refuse
                os.replace(tmp, marker)
        except OSError as err:
            log.warning("could not mark %s as owned by %s: %s", root, owner, err)
        finally:
            tmp.unlink(missing_ok=True)
    return read_owner(root)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(folder):  # does not follow symlinked folders
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _run_folders(root: Path) -> list[tuple[float, Path]]:
    """(last change, folder) of every run folder under `root`, newest first. A run folder is a real folder (not
    a symlink) holding at least one of the files a run writes."""
    folders = []
    for d in root.iterdir():
        if d.is_dir() and not d.is_symlink() and any((d / name).exists() for name in _RUN_FILES):
            folders.append((max((d / n).stat().st_mtime for n in (".", *_RUN_FILES) if (d / n).exists()), d))
    return sorted(folders, reverse=True)


def prune_runs(runs_root: Path | str, protected: Iterable[Path | str] = (), keep: int = KEEP_RUNS,
               max_age_days: float = MAX_AGE_DAYS, grace_s: float = GRACE_S, now: float | None = None,
               owner: str | None = None, max_bytes: float | None = None) -> list[Path]:
    """Delete old run folders under `runs_root`; return the ones deleted (docs/retention.md, "Runs").

    `protected`: every folder still needed, which is never deleted. The caller passes each folder a learner's
    progress points at, each run it queues or trains, and the folder each queued or running resume or fine-tune
    will read (its `resume_from` or `finetune_from`): a queued run reads its source only when it starts.
    `owner` (`owner_identity` of the caller's progress database): the folder is claimed for it if unclaimed, and
    nothing is deleted when it belongs to another database. None skips that check (a single-user tool).
    Never deleted either: a folder changed in the last `grace_s` seconds, anything that does not look like a run
    folder. Of the rest, a folder goes when it is older than `max_age_days`, when more than `keep` folders are
    newer than it, and then oldest first while all run folders together weigh more than `max_bytes` (None: the
    setting, `max_bytes_setting`).
    """
    root = Path(runs_root)
    if not root.is_dir():
        return []
    if owner is not None:
        named = claim(root, owner)
        if named != owner:
            why = f"it belongs to {named}" if named else f"its owner marker {OWNER_FILE} could not be read or written"
            _warn_once(f"owner {root} {named} {owner}", f"not pruning old runs in {root}: {why}, and this "
                                                         f"server's progress database is {owner} (docs/retention.md)")
            return []
    now = time.time() if now is None else now
    cap = max_bytes_setting() if max_bytes is None else max_bytes
    keep_safe = {Path(p).resolve() for p in protected}
    folders = _run_folders(root)
    sizes = {d: _folder_bytes(d) for _, d in folders} if math.isfinite(cap) else {}
    deletable = [d for mtime, d in folders if d.resolve() not in keep_safe and now - mtime >= grace_s]
    past_limits = {d for rank, (mtime, d) in enumerate(folders)
                   if rank >= keep or (math.isfinite(max_age_days) and now - mtime > max_age_days * 86400)}
    doomed = [d for d in deletable if d in past_limits]  # newest first
    total = sum(size for d, size in sizes.items() if d not in doomed)
    for d in reversed(deletable):  # oldest first, until the rest fits
        if total <= cap:
            break
        if d not in doomed:
            doomed.append(d)
            total -= sizes[d]
    if total > cap:
        _warn_once(f"cap {root}", f"runs in {root} weigh {total:,} bytes, over the {cap:,.0f} cap, in folders still "
                                  f"needed or changed in the last {grace_s:.0f} s: nothing more can go")
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    return doomed
