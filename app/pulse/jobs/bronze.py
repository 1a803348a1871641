"""Bronze job: Kafka → `bronze/events_raw`, exactly-once through the checkpoint and the Delta sink."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from pulse import io
from pulse.jobs import Query
from pulse.tables import BRONZE_EVENTS_RAW
from pulse.transforms.bronze import to_bronze
from pulse_core import catalogue
from pulse_core.settings import PulseSettings

QUERY = Query.bronze


def start_kafka_to_bronze(
    spark: SparkSession,
    settings: PulseSettings,
    trigger: io.Trigger,
    max_offsets_per_trigger: int | None = None,
) -> StreamingQuery:
    """Start the Bronze stream; the first run reads the topic from its earliest offsets."""
    table = settings.table_path("bronze", "events_raw")
    io.ensure_delta_table(
        spark, table, BRONZE_EVENTS_RAW, partition_by=catalogue.BRONZE_EVENTS_RAW.partition_by
    )
    records = io.read_kafka_stream(spark, io.KafkaSource.from_settings(settings, max_offsets_per_trigger))
    bronze = to_bronze(records)
    sink = io.StreamSink(QUERY, settings.checkpoint_path(QUERY), trigger)
    return io.write_delta_stream(bronze, table, sink, partition_by=catalogue.BRONZE_EVENTS_RAW.partition_by)
