"""State reset: move streaming jobs' checkpoints aside so that they start over (deploy, reset_state=true).

The deploy runs ``pulse reset-checkpoints`` on a job cluster inside the workspace's network, while the
streaming job is paused. The locations come from the settings (``PULSE_LAKE`` on the cluster), so no
storage path is spelled here. Nothing is deleted: each checkpoint moves to ``_reset/<commit>/<job>`` next
to it and can be moved back to roll the deploy back.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import SparkSession

from pulse import io
from pulse.jobs.lease import CHECKPOINT_ROLES, Leases
from pulse_core.settings import PulseSettings


def reset_location(settings: PulseSettings, commit: str, job: str) -> str:
    """Where a reset moves ``job``'s checkpoint: ``<checkpoints>/_reset/<commit>/<job>``."""
    return f"{settings.checkpoint_path(job).rsplit('/', 1)[0]}/_reset/{commit}/{job}"


def run(spark: SparkSession, settings: PulseSettings, commit: str, jobs: Iterable[str]) -> list[str]:
    """Moves each job's checkpoint aside. Returns one line per job; a job without one is left alone.

    It holds the leases of the tables those jobs write while it does (`pulse.jobs.lease`): a checkpoint
    moved away under a live query would be written again beside the query's data.

    Raises:
        LeaseHeldError: A run still writes the lake; the message names it.
    """
    jobs = list(jobs)
    roles = [role for job in jobs for role in CHECKPOINT_ROLES.get(job, ())]
    leases = Leases.on_lake(settings, "reset-checkpoints", roles, lambda: spark)
    leases.acquire()
    try:
        lines = []
        for job in jobs:
            source, target = settings.checkpoint_path(job), reset_location(settings, commit, job)
            if io.move_tree(spark, source, target):
                lines.append(f"{job}: checkpoint moved from {source} to {target}")
            else:
                lines.append(f"{job}: no checkpoint at {source}, nothing to reset")
        return lines
    finally:
        leases.release()
