"""Silver job: Bronze (a Delta stream) → `silver/events`, rejected rows → `silver/quarantine`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from app import io
from app.jobs.common import timestamp_bounds
from app.settings import PulseSettings
from app.tables import BRONZE_EVENTS_RAW, SILVER_EVENTS, SILVER_QUARANTINE
from app.transforms.silver import first_per_event_id, validate

JOB = "silver"
log = logging.getLogger("pulse.silver")


@dataclass(frozen=True)
class SilverBatchResult:
    """What one micro-batch did: every Bronze row is inserted, quarantined or a duplicate."""

    batch_id: int
    rows_in: int
    inserted: int
    quarantined: int
    duplicates: int
    seconds: float

    def line(self) -> str:
        return (
            f"silver batch {self.batch_id}: {self.rows_in:,} rows in → {self.inserted:,} events, "
            f"{self.quarantined:,} quarantined, {self.duplicates:,} duplicates ({self.seconds:.1f} s)"
        )


class SilverBatchWriter:
    """The foreachBatch handler: validate, quarantine, dedupe, then insert only unseen event_ids."""

    def __init__(self, spark: SparkSession, settings: PulseSettings) -> None:
        self.spark = spark
        self.events_path = settings.table_path("silver", "events")
        self.quarantine_path = settings.table_path("silver", "quarantine")
        self.results: list[SilverBatchResult] = []

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        batch = batch.persist()
        try:
            valid, rejected = validate(batch)
            rows_in = batch.count()
            quarantined = rejected.count()
            # Idempotent per batch: a replayed batch_id is skipped by Delta's transaction ids.
            if quarantined:
                io.append_idempotent(rejected, self.quarantine_path, f"pulse-{JOB}-quarantine", batch_id)
            unique = first_per_event_id(valid).persist()
            inserted = 0
            if unique.take(1):
                first, last = timestamp_bounds(unique, "event_time")
                # The same event_id always carries the same event time, so only files that overlap
                # this batch's time range can hold a duplicate: Delta skips the rest.
                prune = f"t.event_time >= {first} AND t.event_time <= {last}"
                inserted = io.merge_insert_new(self.spark, self.events_path, unique, "event_id", prune)
            unique.unpersist()
        finally:
            batch.unpersist()
        result = SilverBatchResult(
            batch_id=batch_id,
            rows_in=rows_in,
            inserted=inserted,
            quarantined=quarantined,
            duplicates=rows_in - quarantined - inserted,
            seconds=time.monotonic() - started,
        )
        self.results.append(result)
        log.info(result.line())


def start(
    spark: SparkSession,
    settings: PulseSettings,
    trigger: io.Trigger,
    max_files_per_trigger: int | None = None,
) -> StreamingQuery:
    """Start the Silver stream over Bronze's appended rows."""
    bronze_path = settings.table_path("bronze", "events_raw")
    io.ensure_delta_table(spark, bronze_path, BRONZE_EVENTS_RAW, partition_by=("ingest_date",))
    io.ensure_delta_table(spark, settings.table_path("silver", "events"), SILVER_EVENTS)
    io.ensure_delta_table(spark, settings.table_path("silver", "quarantine"), SILVER_QUARANTINE)
    bronze = io.read_delta_stream(spark, bronze_path, max_files_per_trigger)
    sink = io.StreamSink(JOB, settings.checkpoint_path(JOB), trigger)
    return io.write_foreach_batch(bronze, SilverBatchWriter(spark, settings), sink)
