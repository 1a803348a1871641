"""State reset: move streaming jobs' checkpoints aside so that they start over (deploy, reset_state=true).

The deploy runs ``pulse reset-checkpoints`` on a job cluster inside the workspace's network, while the
streaming job is paused. The locations come from the settings (``PULSE_LAKE`` on the cluster), so no
storage path is spelled here. Nothing is deleted: each checkpoint moves to ``_reset/<commit>/<query>``
next to it and can be moved back to roll the deploy back.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import SparkSession

from pulse import io
from pulse.jobs import Query
from pulse.jobs.lease import CHECKPOINT_ROLES, Leases
from pulse_core.settings import PulseSettings


def reset_location(settings: PulseSettings, commit: str, query: Query) -> str:
    """Where a reset moves ``query``'s checkpoint: ``<checkpoints>/_reset/<commit>/<query>``."""
    return f"{settings.checkpoint_path(query).rsplit('/', 1)[0]}/_reset/{commit}/{query}"


def move_checkpoints_aside(
    spark: SparkSession, settings: PulseSettings, commit: str, queries: Iterable[Query]
) -> list[str]:
    """Moves each query's checkpoint aside. Returns one line per query; one without a checkpoint is left
    alone.

    It holds the leases of the tables those queries write while it does (`pulse.jobs.lease`): a checkpoint
    moved away under a live query would be written again beside the query's data.

    Raises:
        LeaseHeldError: A run still writes the lake; the message names it.
    """
    queries = list(queries)
    roles = [role for query in queries for role in CHECKPOINT_ROLES.get(query, ())]
    leases = Leases.on_lake(settings, "reset-checkpoints", roles, lambda: spark)
    leases.acquire()
    try:
        lines = []
        for query in queries:
            source, target = settings.checkpoint_path(query), reset_location(settings, commit, query)
            if io.move_tree(spark, source, target):
                lines.append(f"{query}: checkpoint moved from {source} to {target}")
            else:
                lines.append(f"{query}: no checkpoint at {source}, nothing to reset")
        return lines
    finally:
        leases.release()
