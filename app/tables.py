"""The schemas of the lake's tables (see DESIGN.md, Tables)."""

from __future__ import annotations

from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _schema(*fields: tuple[str, object]) -> StructType:
    return StructType([StructField(name, kind, nullable=True) for name, kind in fields])  # type: ignore[arg-type]


# The value is binary: Kafka delivers bytes, and poison input is not UTF-8, which a Delta string column
# must be. Silver decodes it.
BRONZE_EVENTS_RAW = _schema(
    ("key", StringType()),
    ("value", BinaryType()),
    ("topic", StringType()),
    ("partition", IntegerType()),
    ("offset", LongType()),
    ("kafka_timestamp", TimestampType()),
    ("ingested_at", TimestampType()),
    # Partition column: Bronze is partitioned by ingest date.
    ("ingest_date", DateType()),
)

SILVER_EVENTS = _schema(
    ("event_id", StringType()),
    ("event_time", TimestampType()),
    ("event", StringType()),
    ("user_id", StringType()),
    ("video_id", StringType()),
    ("payload", StringType()),
    ("kafka_partition", IntegerType()),
    ("kafka_offset", LongType()),
    ("ingested_at", TimestampType()),
)

SILVER_QUARANTINE = _schema(
    # A readable copy (invalid UTF-8 replaced by U+FFFD) and, separately, the exact bytes.
    ("value", StringType()),
    ("raw_value", BinaryType()),
    ("reason", StringType()),
    ("kafka_partition", IntegerType()),
    ("kafka_offset", LongType()),
    ("ingested_at", TimestampType()),
)

GOLD_EVENTS_BY_TYPE = _schema(
    ("window_start", TimestampType()),
    ("window_end", TimestampType()),
    ("video_id", StringType()),
    ("event", StringType()),
    ("event_count", LongType()),
)

GOLD_USER_SESSIONS = _schema(
    ("user_id", StringType()),
    ("video_id", StringType()),
    ("session_start", TimestampType()),
    ("session_end", TimestampType()),
    ("duration_seconds", DoubleType()),
    ("event_count", LongType()),
    ("message_count", LongType()),
    # True when the session's last event is a `leave`: the viewer's next event starts a new session.
    ("ended_by_leave", BooleanType()),
)

GOLD_VIDEO_ACTIVITY = _schema(
    ("window_start", TimestampType()),
    ("window_end", TimestampType()),
    ("video_id", StringType()),
    ("active_viewers", LongType()),
    ("concurrent_viewers", LongType()),
    ("message_count", LongType()),
    ("like_count", LongType()),
    ("event_count", LongType()),
)

GOLD_TABLES: dict[str, tuple[StructType, tuple[str, ...]]] = {
    # name: (schema, merge keys). No liquid clustering: delta-rs, which commits the live MERGEs, does not
    # write clustered tables, and Gold is small enough for plain compaction (docs/pipeline.md).
    "events_by_type": (GOLD_EVENTS_BY_TYPE, ("window_start", "video_id", "event")),
    "user_sessions": (GOLD_USER_SESSIONS, ("user_id", "video_id", "session_start")),
    "video_activity": (GOLD_VIDEO_ACTIVITY, ("window_start", "video_id")),
}
