"""`pulse backfill`: rebuild Silver (+ quarantine) and Gold from Bronze, in whole or from an ingest instant.

For when the Gold logic, the Silver rules or the state layout change. It uses the same transforms as the
live pipeline: Bronze rows are refined in Kafka order, chunk by chunk, by the same `MedallionWriter`
(Silver and quarantine only), then every Gold table is recomputed from Silver in one pass and replaced.
Stop the live pipeline first: both write Silver, and the backfill refuses to start beside it (the lease).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pulse import io
from pulse.jobs.lease import Leases
from pulse.jobs.medallion import USER_METADATA_CONF, MedallionWriter, ensure_tables
from pulse.tables import GOLD_TABLES
from pulse.transforms.gold_tables import events_by_type, sessionize, video_activity
from pulse_core.progress import progress_metadata
from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.backfill")
CHUNK_ROWS = 200_000


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill did."""

    bronze_rows: int
    events: int
    quarantined: int
    duplicates: int
    chunks: int
    seconds: float


def rebuild_from_bronze(
    spark: SparkSession,
    settings: PulseSettings,
    since: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
    echo: Callable[[str], None] = log.info,
) -> BackfillResult:
    """Rebuild Silver from Bronze rows ingested at or after `since` (all when None), then all of Gold.

    It holds the lake's `refine` lease meanwhile (`pulse.jobs.lease`): a live `all` or `silver` refuses to
    start beside it, and it refuses to start beside one.

    Raises:
        LeaseHeldError: A run still writes Silver and Gold; the message names it.
    """
    leases = Leases.on_lake(settings, "backfill", ("refine",), lambda: spark)
    leases.acquire()
    leases.start_renewing()
    try:
        return _rebuild(spark, settings, since, chunk_rows, echo, leases.check)
    finally:
        leases.release()


def _rebuild(
    spark: SparkSession,
    settings: PulseSettings,
    since: datetime | None,
    chunk_rows: int,
    echo: Callable[[str], None],
    guard: Callable[[], None],
) -> BackfillResult:
    began = time.monotonic()
    ensure_tables(spark, settings)
    bronze = io.read_delta(spark, settings.table_path("bronze", "events_raw"))
    cut = f"ingested_at >= TIMESTAMP '{since.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}'" if since else "true"
    for layer, table in (("silver", "events"), ("silver", "quarantine")):
        io.delete_where(spark, settings.table_path(layer, table), cut)
    echo(f"backfill: cleared silver and quarantine rows where {cut}")
    source = bronze.where(cut)
    ranges = source.groupBy("partition").agg(F.min("offset"), F.max("offset")).orderBy("partition").collect()
    run_id = f"backfill-{uuid.uuid4().hex[:12]}"
    writer = MedallionWriter(spark, settings, run_id, write_bronze=False, write_gold=False, guard=guard)
    total = {"rows": 0, "events": 0, "quarantined": 0, "duplicates": 0, "chunks": 0}
    planned = sum((high - low) // chunk_rows + 1 for _, low, high in ranges)
    for partition, low, high in ranges:
        for start in range(low, high + 1, chunk_rows):
            chunk = source.where(
                (F.col("partition") == partition)
                & (F.col("offset") >= start)
                & (F.col("offset") < start + chunk_rows)
            )
            chunk_result = writer.write(chunk, total["chunks"])
            total["chunks"] += 1
            for key, value in (
                ("rows", chunk_result.rows_in),
                ("events", chunk_result.inserted),
                ("quarantined", chunk_result.quarantined),
                ("duplicates", chunk_result.duplicates),
            ):
                total[key] += value
            echo(
                f"backfill: chunk {total['chunks']}/{planned} (partition {partition}, offset {start:,}+): "
                f"{chunk_result.rows_in:,} rows → {chunk_result.inserted:,} events, "
                f"{chunk_result.quarantined:,} quarantined, {chunk_result.duplicates:,} duplicates "
                f"({chunk_result.seconds:.1f} s)"
            )
    guard()
    rebuild_gold(spark, settings, run_id, echo)
    result = BackfillResult(
        total["rows"],
        total["events"],
        total["quarantined"],
        total["duplicates"],
        total["chunks"],
        time.monotonic() - began,
    )
    echo(
        f"backfill: done in {result.seconds:.1f} s: {result.bronze_rows:,} bronze rows → {result.events:,} "
        f"events, {result.quarantined:,} quarantined, {result.duplicates:,} duplicates"
    )
    return result


def rebuild_gold(
    spark: SparkSession, settings: PulseSettings, run_id: str, echo: Callable[[str], None]
) -> None:
    """Recompute every Gold table from the whole of Silver and replace it."""
    began = time.monotonic()
    silver = io.read_delta(spark, settings.table_path("silver", "events")).select(
        "event_id", "event_time", "event", "user_id", "video_id"
    )
    newest = silver.agg(F.date_format(F.max("event_time"), io.INSTANT_TEXT)).first()
    newest_time = io.parse_instant(newest[0]) if newest and newest[0] else None
    frames = {
        "events_by_type": events_by_type(silver),
        "video_activity": video_activity(silver),
        "user_sessions": sessionize(silver),
    }
    spark.conf.set(USER_METADATA_CONF, progress_metadata(run_id, 0, newest_time))
    try:
        for name, frame in frames.items():
            schema = GOLD_TABLES[name][0]
            io.replace_all(frame.select(*schema.fieldNames()), settings.table_path("gold", name))
            echo(f"backfill: rebuilt gold.{name} ({time.monotonic() - began:.1f} s)")
    finally:
        spark.conf.unset(USER_METADATA_CONF)
