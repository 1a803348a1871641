"""Bronze job: Kafka → `bronze/events_raw`, exactly-once through the checkpoint and the Delta sink."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from pulse import io
from pulse.jobs import Query, positions
from pulse.tables import BRONZE_EVENTS_RAW
from pulse_core import catalogue
from pulse_core.settings import PulseSettings

QUERY = Query.bronze


def start_kafka_to_bronze(
    spark: SparkSession,
    settings: PulseSettings,
    trigger: io.Trigger,
    max_offsets_per_trigger: int | None = None,
    partitions: int | None = None,
) -> StreamingQuery:
    """Start the Bronze stream: after what Bronze holds, or from the earliest offsets on a new lake
    (`positions.kafka_records`; `partitions` is the topic's partition count)."""
    table = settings.table_path("bronze", "events_raw")
    io.ensure_delta_table(
        spark, table, BRONZE_EVENTS_RAW, partition_by=catalogue.BRONZE_EVENTS_RAW.partition_by
    )
    checkpoint = settings.checkpoint_path(QUERY)
    bronze = positions.kafka_records(spark, settings, checkpoint, max_offsets_per_trigger, partitions)
    sink = io.StreamSink(QUERY, checkpoint, trigger)
    return io.write_delta_stream(bronze, table, sink, partition_by=catalogue.BRONZE_EVENTS_RAW.partition_by)
