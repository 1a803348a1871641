"""The schemas of the lake's tables (see DESIGN.md, Tables)."""

from __future__ import annotations

from pyspark.sql.types import (
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


BRONZE_EVENTS_RAW = _schema(
    ("key", StringType()),
    ("value", StringType()),
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
    ("value", StringType()),
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

# Gold is clustered for the dashboard's typical read: the last hour of one video.
GOLD_TABLES: dict[str, tuple[StructType, tuple[str, ...], tuple[str, ...]]] = {
    # name: (schema, merge keys, clustering columns)
    "events_by_type": (
        GOLD_EVENTS_BY_TYPE,
        ("window_start", "video_id", "event"),
        ("window_start", "video_id"),
    ),
    "user_sessions": (
        GOLD_USER_SESSIONS,
        ("user_id", "video_id", "session_start"),
        ("session_start", "video_id"),
    ),
    "video_activity": (GOLD_VIDEO_ACTIVITY, ("window_start", "video_id"), ("window_start", "video_id")),
}
