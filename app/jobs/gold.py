"""Gold job: Silver (a Delta stream) → `gold/events_by_type`, `gold/user_sessions`, `gold/video_activity`.

Each micro-batch finds the (video, minute) windows and the (user, video) pairs its new events touch,
recomputes them from Silver over the look-back they need, and MERGEs the result into Gold. A replayed
batch recomputes the same rows from the same Silver, so every write is idempotent; and since the
recompute reads Silver, a late event is counted exactly however late it is.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from app import io
from app.jobs.common import timestamp_bounds
from app.settings import PulseSettings
from app.tables import GOLD_TABLES, SILVER_EVENTS
from app.transforms.gold import (
    SESSION_GAP_S,
    WINDOW_S,
    events_by_type,
    session_recompute_starts,
    sessionize,
    touched_windows,
    video_activity,
    window_start,
)

JOB = "gold"
log = logging.getLogger("pulse.gold")
# Compact a Gold table once MERGEs have left more than this many files.
COMPACT_AFTER_FILES = 64
COMPACT_CHECK_EVERY = 10


@dataclass(frozen=True)
class GoldBatchResult:
    """What one micro-batch changed."""

    batch_id: int
    rows_in: int
    windows: int
    sessions: int
    seconds: float

    def line(self) -> str:
        return (
            f"gold batch {self.batch_id}: {self.rows_in:,} rows in → {self.windows:,} windows and "
            f"{self.sessions:,} sessions recomputed ({self.seconds:.1f} s)"
        )


class GoldBatchWriter:
    """The foreachBatch handler: recompute what the batch touched, then MERGE it into Gold."""

    def __init__(self, spark: SparkSession, settings: PulseSettings) -> None:
        self.spark = spark
        self.silver_path = settings.table_path("silver", "events")
        self.paths = {name: settings.table_path("gold", name) for name in GOLD_TABLES}
        self.results: list[GoldBatchResult] = []

    def _silver_between(self, low: str, high: str | None = None) -> DataFrame:
        events = io.read_delta(self.spark, self.silver_path).where(f"event_time >= {low}")
        return events.where(f"event_time < {high}") if high else events

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        batch = batch.select("event_id", "event_time", "event", "user_id", "video_id").persist()
        try:
            rows_in = batch.count()
            windows = sessions = 0
            if rows_in:
                # The three MERGEs touch different tables: run them side by side. On small batches the
                # time goes to planning and commits on the driver, which overlap well.
                with ThreadPoolExecutor(max_workers=3, thread_name_prefix="gold-merge") as pool:
                    window_merges = self._windows(batch, pool)
                    session_merge = pool.submit(self._sessions, batch)
                    for future in window_merges[1]:
                        future.result()
                    windows, sessions = window_merges[0], session_merge.result()
        finally:
            batch.unpersist()
        result = GoldBatchResult(batch_id, rows_in, windows, sessions, time.monotonic() - started)
        self.results.append(result)
        log.info(result.line())
        if batch_id % COMPACT_CHECK_EVERY == 0:
            self._compact_if_fragmented()

    def _windows(self, batch: DataFrame, pool: ThreadPoolExecutor) -> tuple[int, list[Future[None]]]:
        touched = touched_windows(batch).persist()
        count = touched.count()
        first, last = timestamp_bounds(touched, "window_start")
        # Presence at a window's end looks back 120 s: one window before the earliest touched one.
        low = f"{first} - INTERVAL {WINDOW_S} SECONDS"
        high = f"{last} + INTERVAL {WINDOW_S} SECONDS"
        context = self._silver_between(low, high).join(
            F.broadcast(touched.select("video_id").distinct()), "video_id"
        )
        activity = video_activity(context, touched)
        own_windows = batch.select(
            "video_id", window_start(F.col("event_time")).alias("window_start")
        ).distinct()
        counts = events_by_type(
            context.withColumn("window_start", window_start(F.col("event_time")))
            .join(F.broadcast(own_windows), ["video_id", "window_start"])
            .drop("window_start")
        )
        prune = f"t.window_start >= {low} AND t.window_start < {high}"
        merges = [
            pool.submit(io.merge_upsert, self.spark, self.paths[name], frame, GOLD_TABLES[name][1], prune)
            for name, frame in (("events_by_type", counts), ("video_activity", activity))
        ]
        return count, merges

    def _sessions(self, batch: DataFrame) -> int:
        keys = GOLD_TABLES["user_sessions"][1]
        first_new, _ = timestamp_bounds(batch, "event_time")
        existing = io.read_delta(self.spark, self.paths["user_sessions"]).where(
            f"session_end >= {first_new} - INTERVAL {SESSION_GAP_S} SECONDS"
        )
        starts = session_recompute_starts(batch, existing).persist()
        low, _ = timestamp_bounds(starts, "rebuild_from")
        events = (
            self._silver_between(low)
            .join(F.broadcast(starts), ["user_id", "video_id"])
            .where(F.col("event_time") >= F.col("rebuild_from"))
            .drop("rebuild_from")
        )
        rebuilt = sessionize(events).persist()
        stale = (
            existing.join(F.broadcast(starts), ["user_id", "video_id"])
            .where(F.col("session_start") >= F.col("rebuild_from"))
            .drop("rebuild_from")
            .join(rebuilt.select(*keys), list(keys), "left_anti")
        )
        io.merge_replace(
            self.spark, self.paths["user_sessions"], rebuilt, stale, keys, prune=f"t.session_start >= {low}"
        )
        count = rebuilt.count()
        rebuilt.unpersist()
        starts.unpersist()
        return count

    def _compact_if_fragmented(self) -> None:
        for name, path in self.paths.items():
            files = io.file_count(self.spark, path)
            if files > COMPACT_AFTER_FILES:
                began = time.monotonic()
                io.optimize(self.spark, path)
                log.info(f"gold: compacted {name} ({files} files) in {time.monotonic() - began:.1f} s")


def ensure_tables(spark: SparkSession, settings: PulseSettings) -> None:
    """Create the Gold tables, clustered for the last-hour-of-one-video read, if they are missing."""
    for name, (schema, _, clustering) in GOLD_TABLES.items():
        io.ensure_delta_table(spark, settings.table_path("gold", name), schema, cluster_by=clustering)


def start(
    spark: SparkSession,
    settings: PulseSettings,
    trigger: io.Trigger,
    max_files_per_trigger: int | None = None,
) -> StreamingQuery:
    """Start the Gold stream over Silver's new events."""
    silver_path = settings.table_path("silver", "events")
    io.ensure_delta_table(spark, silver_path, SILVER_EVENTS)
    ensure_tables(spark, settings)
    silver = io.read_delta_stream(spark, silver_path, max_files_per_trigger)
    sink = io.StreamSink(JOB, settings.checkpoint_path(JOB), trigger)
    return io.write_foreach_batch(silver, GoldBatchWriter(spark, settings), sink)
