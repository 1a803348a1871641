"""Bronze: Kafka records as they came, with their coordinates and the ingest time."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def to_bronze(records: DataFrame) -> DataFrame:
    """Keep the raw value untouched (as bytes), plus where it came from and when it was ingested.

    The value is never decoded or parsed: bytes that are not UTF-8 are kept exactly as they came, and
    Silver quarantines them.
    """
    return records.select(
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("binary").alias("value"),
        F.col("topic"),
        F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("long").alias("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("ingested_at"),
    ).withColumn("ingest_date", F.to_date("ingested_at"))
