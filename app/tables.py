"""The schemas of the lake's tables (see DESIGN.md, Tables)."""

from __future__ import annotations

from pyspark.sql.types import (
    DateType,
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
