"""Maintenance: compact every table's small files (OPTIMIZE) and delete files no longer needed (VACUUM)."""

from __future__ import annotations

import logging
import time
from functools import partial

from pyspark.sql import SparkSession

from pulse import io
from pulse.jobs.lease import ROLES, lease_path
from pulse_core.catalogue import TABLES
from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.maintenance")
# Streams read recent versions: never vacuum below a week, so a stopped stream can still resume.
MIN_RETENTION_HOURS = 168.0
# What a lease table keeps of replaced files (its `delta.deletedFileRetentionDuration`, io).
LEASE_RETENTION_HOURS = 24.0


def optimize_and_vacuum(
    spark: SparkSession, settings: PulseSettings, retention_hours: float = MIN_RETENTION_HOURS
) -> list[str]:
    """OPTIMIZE then VACUUM every lake table that exists. Returns one line per table."""
    if retention_hours < MIN_RETENTION_HOURS:
        raise ValueError(f"retention must be at least {MIN_RETENTION_HOURS:g} hours, so streams can resume")
    lines = []
    for table in TABLES:
        name = f"{table.layer}.{table.name}"
        path = settings.table_path(table.layer, table.name)
        if not io.is_delta_table(spark, path):
            lines.append(f"{name}: no table yet, skipped")
            continue
        began = time.monotonic()
        before = io.file_count(spark, path)
        # The live pipeline may commit to the same table meanwhile: a lost race is simply redone.
        io.retry_on_conflict(partial(io.optimize, spark, path), f"OPTIMIZE {name}")
        io.vacuum(spark, path, retention_hours)
        after = io.file_count(spark, path)
        lines.append(f"{name}: {before} → {after} files ({time.monotonic() - began:.1f} s)")
        log.info(lines[-1])
    for role in ROLES:
        # A cloud lake's lease replaces its one row at every renewal (`io.commit_lease_record`); nothing
        # reads the replaced files, which its table keeps for a day.
        path = lease_path(settings, role)
        if io.is_delta_table(spark, path):
            io.vacuum(spark, path, LEASE_RETENTION_HOURS)
            lines.append(f"lease {role}: vacuumed")
    return lines
