"""One micro-batch through every layer: Bronze rows → Silver (+ quarantine) → Gold → the status record.

Pulse does not chain streaming queries through Delta tables: each Kafka micro-batch is written to
Bronze, validated, deduplicated and folded into Gold in the same batch, so an event waits for one
trigger, not three (docs/pipeline.md says why and what each step measured).

Every write is idempotent per batch. Appends carry Delta transaction ids (`txnAppId` = the run's id
and table, `txnVersion` = the batch id), so a replayed batch skips what it already committed. The new
Silver events of a batch are found the same way on every attempt (see `unseen_events`), and Gold is
written as absolute values recomputed for what the batch touched, so redoing a Gold MERGE is harmless.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from app import io
from app.progress import Progress, newest_progress, progress_metadata
from app.settings import PulseSettings
from app.tables import (
    BRONZE_EVENTS_RAW,
    GOLD_TABLES,
    SILVER_EVENTS,
    SILVER_QUARANTINE,
)
from app.transforms.gold import (
    SESSION_GAP_S,
    WINDOW_S,
    as_segments,
    events_by_type,
    session_update_plan,
    sessionize_segments,
    sessions_as_segments,
    touched_windows,
    video_activity,
    window_start,
)
from app.transforms.silver import check_events, first_per_event_id, split_checked, unseen_events

log = logging.getLogger("pulse.pipeline")
_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"
GAP = f"{SESSION_GAP_S} SECONDS"
# Delta writes this session setting into each commit's `userMetadata`: Gold commits carry the progress.
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


@dataclass(frozen=True)
class BatchResult:
    """What one micro-batch did. Every row in is an event, a quarantined row or a duplicate."""

    batch_id: int
    rows_in: int
    inserted: int
    quarantined: int
    duplicates: int
    windows_touched: bool
    sessions_rebuilt_from_silver: bool
    newest_event_time: datetime | None
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        phases = " ".join(f"{name} {seconds:.1f}" for name, seconds in self.phases.items())
        return (
            f"pipeline batch {self.batch_id}: {self.rows_in:,} rows in → {self.inserted:,} events, "
            f"{self.quarantined:,} quarantined, {self.duplicates:,} duplicates [{phases}] "
            f"({self.seconds:.1f} s)"
        )

    def record(self) -> dict[str, object]:
        """The result as plain values, for the progress log benchmarks read."""
        values = asdict(self)
        values["newest_event_time"] = self.newest_event_time.isoformat() if self.newest_event_time else None
        return values


def _literal(formatted: str) -> str:
    """A SQL timestamp literal from a `_FORMAT` string (Spark formats in the session time zone, UTC)."""
    return f"TIMESTAMP '{formatted}'"


def instant(formatted: str) -> datetime:
    """The UTC instant a `_FORMAT` string denotes."""
    return datetime.strptime(formatted, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def ensure_tables(spark: SparkSession, settings: PulseSettings) -> None:
    """Create every lake table that is missing, so streams and readers can start before data arrives."""
    io.ensure_delta_table(
        spark, settings.table_path("bronze", "events_raw"), BRONZE_EVENTS_RAW, partition_by=("ingest_date",)
    )
    io.ensure_delta_table(spark, settings.table_path("silver", "events"), SILVER_EVENTS)
    io.ensure_delta_table(spark, settings.table_path("silver", "quarantine"), SILVER_QUARANTINE)
    for name, (schema, _, clustering) in GOLD_TABLES.items():
        io.ensure_delta_table(
            spark,
            settings.table_path("gold", name),
            schema,
            cluster_by=clustering,
        )


@dataclass
class GoldUpdate:
    """The new rows of one Gold table for one batch (and the rows they replace), then their MERGE."""

    path: str
    frame: DataFrame
    keys: tuple[str, ...]
    prune: str
    stale: DataFrame | None = None
    rows: tuple[pa.Table, pa.Table | None] | None = None

    def fetch(self) -> tuple[pa.Table, pa.Table | None]:
        """Compute the rows (a small Arrow table) on the driver."""
        return self.frame.toArrow(), (self.stale.toArrow() if self.stale is not None else None)

    def merge(self, spark: SparkSession) -> None:
        """MERGE the fetched rows: upsert them by key, and delete the stale ones."""
        assert self.rows is not None, "fetch first"
        rows = spark.createDataFrame(self.rows[0], schema=self.frame.schema)
        if self.rows[1] is None:
            io.merge_upsert(spark, self.path, rows, self.keys, self.prune)
            return
        stale = spark.createDataFrame(self.rows[1], schema=self.frame.schema)
        io.merge_replace(spark, self.path, rows, stale, self.keys, self.prune)


class MedallionWriter:
    """Writes one batch of Bronze-shaped rows to every layer; the same code serves streaming and backfill.

    Args:
        spark: the session.
        settings: where the tables are.
        run_id: names this run's transactions (`txnAppId`); a new checkpoint or backfill gets a new one,
            so its batch ids never collide with an earlier run's.
        write_bronze: append the rows to Bronze too (false when they come from Bronze).
        write_gold: fold the batch into Gold (false in a backfill, which rebuilds Gold once at the end).
    """

    def __init__(
        self,
        spark: SparkSession,
        settings: PulseSettings,
        run_id: str,
        write_bronze: bool,
        write_gold: bool = True,
    ) -> None:
        self.spark = spark
        self.run_id = run_id
        self.write_bronze = write_bronze
        self.write_gold = write_gold
        self.paths = {
            "bronze": settings.table_path("bronze", "events_raw"),
            "silver": settings.table_path("silver", "events"),
            "quarantine": settings.table_path("silver", "quarantine"),
            **{name: settings.table_path("gold", name) for name in GOLD_TABLES},
        }
        self.newest_event_time: datetime | None = None
        self.last: BatchResult | None = None

    def _app_id(self, table: str) -> str:
        return f"pulse-{self.run_id}-{table}"

    def write(self, rows: DataFrame, batch_id: int) -> BatchResult:
        """Write one batch. Returns what it did; raises when a write fails (the batch is then retried)."""
        began = time.monotonic()
        phases: dict[str, float] = {}
        rows = rows.persist()
        pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="pulse-write")
        pending: list[Future[None]] = []
        try:
            if self.write_bronze:
                pending.append(
                    pool.submit(
                        io.append_idempotent, rows, self.paths["bronze"], self._app_id("bronze"), batch_id
                    )
                )
            checked = check_events(rows).persist()
            stats = checked.agg(
                F.count(F.lit(1)).alias("rows"),
                F.count("_reason").alias("rejected"),
                F.date_format(F.min(F.when(F.col("_reason").isNull(), F.col("_event_time"))), _FORMAT),
                F.date_format(F.max(F.when(F.col("_reason").isNull(), F.col("_event_time"))), _FORMAT),
            ).first()
            assert stats is not None
            rows_in, quarantined = int(stats[0]), int(stats[1])
            valid, rejected = split_checked(checked)
            if quarantined:
                pending.append(
                    pool.submit(
                        io.append_idempotent,
                        rejected,
                        self.paths["quarantine"],
                        self._app_id("quarantine"),
                        batch_id,
                    )
                )
            phases["check"] = time.monotonic() - began
            inserted, windows, rebuilt = 0, False, False
            if stats[2] is not None:
                inserted, windows, rebuilt = self._silver_and_gold(
                    valid, stats[2], stats[3], batch_id, pool, phases
                )
            for future in pending:
                future.result()
        finally:
            pool.shutdown(wait=True)
            checked.unpersist()
            rows.unpersist()
        seconds = time.monotonic() - began
        result = BatchResult(
            batch_id=batch_id,
            rows_in=rows_in,
            inserted=inserted,
            quarantined=quarantined,
            duplicates=rows_in - quarantined - inserted,
            windows_touched=windows,
            sessions_rebuilt_from_silver=rebuilt,
            newest_event_time=self.newest_event_time,
            seconds=seconds,
            phases=phases,
        )
        self.last = result
        return result

    def _silver_and_gold(
        self,
        valid: DataFrame,
        first: str,
        last: str,
        batch_id: int,
        pool: ThreadPoolExecutor,
        phases: dict[str, float],
    ) -> tuple[int, bool, bool]:
        began = time.monotonic()
        unique = first_per_event_id(valid)
        # The same event_id always carries the same event time, so only Silver rows in the batch's
        # event-time range can be copies: Delta skips every file outside it.
        silver_range = io.read_delta(self.spark, self.paths["silver"]).where(
            f"event_time >= {_literal(first)} AND event_time <= {_literal(last)}"
        )
        new = unseen_events(unique, silver_range).persist()
        cached = [new]
        try:
            io.append_idempotent(new, self.paths["silver"], self._app_id("silver"), batch_id)
            bounds = new.agg(
                F.count(F.lit(1)),
                F.date_format(F.min("event_time"), _FORMAT),
                F.date_format(F.max("event_time"), _FORMAT),
            ).first()
            assert bounds is not None
            inserted = int(bounds[0])
            phases["silver"] = time.monotonic() - began
            if not inserted or not self.write_gold:
                return inserted, False, False
            events = new.select("event_id", "event_time", "event", "user_id", "video_id")
            newest = instant(bounds[2])
            if self.newest_event_time is None or newest > self.newest_event_time:
                self.newest_event_time = newest
            updates = self._windows(events, bounds[1], bounds[2])
            sessions, rebuilt = self._sessions(events, bounds[1], cached)
            updates.append(sessions)
            # Gold changes are small: compute them once, side by side, and hand each MERGE a local copy,
            # so the MERGE neither recomputes nor re-materializes its source.
            for update, rows in zip(updates, pool.map(GoldUpdate.fetch, updates), strict=True):
                update.rows = rows
            # Every Gold commit of this batch carries the progress record (see `read_progress`).
            self.spark.conf.set(
                USER_METADATA_CONF, progress_metadata(self.run_id, batch_id, self.newest_event_time)
            )
            try:
                for merge in [pool.submit(update.merge, self.spark) for update in updates]:
                    merge.result()
            finally:
                self.spark.conf.unset(USER_METADATA_CONF)
            phases["gold"] = time.monotonic() - began - phases["silver"]
            return inserted, True, rebuilt
        finally:
            for frame in cached:
                frame.unpersist()

    def _windows(self, events: DataFrame, first: str, last: str) -> list[GoldUpdate]:
        """Recompute, from Silver, the (video, minute) rows the new events touch: counts and presence."""
        touched = touched_windows(events)
        # Presence at a window's end looks back 120 s: one window before the earliest touched one, up to
        # the end of the window after the latest one.
        low = f"date_trunc('minute', {_literal(first)}) - INTERVAL {WINDOW_S} SECONDS"
        high = f"date_trunc('minute', {_literal(last)}) + INTERVAL {2 * WINDOW_S} SECONDS"
        context = (
            io.read_delta(self.spark, self.paths["silver"])
            .where(f"event_time >= {low} AND event_time < {high}")
            .select("event_id", "event_time", "event", "user_id", "video_id")
            .join(touched.select("video_id").distinct(), "video_id")
        )
        own_windows = events.select(
            "video_id", window_start(F.col("event_time")).alias("window_start")
        ).distinct()
        counts = events_by_type(
            context.withColumn("window_start", window_start(F.col("event_time")))
            .join(own_windows, ["video_id", "window_start"])
            .drop("window_start")
        )
        activity = video_activity(context, touched)
        prune = f"t.window_start >= {low} AND t.window_start < {high}"
        return [
            GoldUpdate(self.paths[name], frame, GOLD_TABLES[name][1], prune)
            for name, frame in (("video_activity", activity), ("events_by_type", counts))
        ]

    def _sessions(self, events: DataFrame, first: str, cached: list[DataFrame]) -> tuple[GoldUpdate, bool]:
        """Plan the `gold.user_sessions` update for the new events. Returns it, and whether some pairs
        needed Silver.

        In-order events only extend a viewer's latest session, whatever its length; a late event that
        lands among a viewer's existing events makes that viewer's affected sessions rebuild from Silver.
        Frames it caches go into `cached`.
        """
        keys = GOLD_TABLES["user_sessions"][1]
        horizon = f"{_literal(first)} - INTERVAL {GAP}"
        prune = f"t.session_end >= {horizon}"
        path = self.paths["user_sessions"]
        recent = io.read_delta(self.spark, path).where(f"session_end >= {horizon}")
        plan = session_update_plan(events, recent).persist()
        cached.append(plan)
        rebuild_from = plan.agg(
            F.date_format(F.min(F.when(~F.col("extends"), F.col("rebuild_from"))), _FORMAT)
        ).first()
        extending = plan.where("extends").select("user_id", "video_id", "first_new")
        # Every new event of an extending pair comes after all of the pair's affected sessions.
        affected = (
            recent.join(extending, ["user_id", "video_id"])
            .where(F.col("session_end") >= F.col("first_new") - F.expr(f"INTERVAL {GAP}"))
            .select(*recent.columns)
        )
        segments = sessions_as_segments(affected).unionByName(
            as_segments(events.join(extending.drop("first_new"), ["user_id", "video_id"]))
        )
        low = rebuild_from[0] if rebuild_from else None
        if low is None:
            return GoldUpdate(path, sessionize_segments(segments), keys, prune), False
        rebuilding = plan.where("NOT extends").select("user_id", "video_id", "rebuild_from")
        history = (
            io.read_delta(self.spark, self.paths["silver"])
            .where(f"event_time >= {_literal(low)}")
            .select("event_id", "event_time", "event", "user_id", "video_id")
            .join(rebuilding, ["user_id", "video_id"])
            .where(F.col("event_time") >= F.col("rebuild_from"))
            .drop("rebuild_from")
        )
        sessions = sessionize_segments(segments.unionByName(as_segments(history))).persist()
        cached.append(sessions)
        # The rebuilt pairs' old sessions that no longer exist (merged or split differently) go.
        stale = (
            recent.join(rebuilding, ["user_id", "video_id"])
            .where(F.col("session_start") >= F.col("rebuild_from"))
            .select(*recent.columns)
            .join(sessions.select(*keys), list(keys), "left_anti")
        )
        return GoldUpdate(path, sessions, keys, prune, stale), True

    def resume_newest(self) -> None:
        """Start from the newest event time Gold already reflects, so the lag line stays truthful."""
        progress = read_progress(self.spark, self.paths["video_activity"])
        self.newest_event_time = progress.newest_event_time if progress else None


def read_progress(spark: SparkSession, path: str) -> Progress | None:
    """The newest progress record among a Gold table's recent commits."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    history = (
        DeltaTable.forPath(spark, path)
        .history(20)
        .select("userMetadata", F.date_format("timestamp", _FORMAT))
    )
    return newest_progress([(row[0], instant(row[1])) for row in history.collect()])
