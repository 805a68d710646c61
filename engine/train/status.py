"""Where a run is in its life, and how it ended: `RunStatus`, the one set of names every layer compares against.

The training loop ends a run as finished, stopped or diverged, a run that breaks is failed, the run manager adds
queued and running, and a folder left by a server that died mid-run reads as interrupted. A StrEnum, so it
compares equal to the plain strings the worker process sends and summary.json stores.
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    """Where a run is in its life. A StrEnum, so it compares equal to the plain strings the worker sends and
    summary.json stores ("finished" == RunStatus.FINISHED)."""

    QUEUED = "queued"  # waiting for a free slot
    RUNNING = "running"  # training (or starting to)
    FINISHED = "finished"  # reached its step count or time budget
    STOPPED = "stopped"  # the learner pressed Stop, nobody watched it, or it hung and was ended
    DIVERGED = "diverged"  # the loss became NaN or exploded
    FAILED = "failed"  # an error; the message says which
    INTERRUPTED = "interrupted"  # the server stopped mid-run: the folder still says "running"

    @property
    def active(self) -> bool:
        """Still holds (or waits for) a training slot."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def ended(self) -> bool:
        return not self.active

    @classmethod
    def parse(cls, value: str | None, default: RunStatus) -> RunStatus:
        """`value` as a status, or `default` for anything this version does not know (old or foreign folders)."""
        try:
            return cls(value)
        except ValueError:
            return default


# Can be continued from its checkpoint, when its folder holds one that reads (engine.runs.snapshot.resumable): a
# stopped or interrupted run, and a failed one (its final save failed, or the process was killed mid-run, say for
# memory): its last periodic checkpoint is as good as a stopped run's. A finished run has spent its budget; a
# diverged one has no good weights.
RESUMABLE = frozenset({RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED})
