"""The pipeline ceiling: a plain Spark Kafka → Delta copy of the topic (availableNow), in its own JVM.

`python -m benchmarks.spark_copy --target PATH --checkpoint PATH` reads PULSE_KAFKA_TOPIC from the
earliest offset with the session `get_spark` builds (same jars and settings as the pipeline), writes
the records unchanged to a Delta table and prints one JSON line with the timings.
"""

from __future__ import annotations

import argparse
import json
import time

from pyspark.sql import DataFrame, SparkSession

from pulse.spark import get_spark
from pulse_core.settings import PulseSettings, load_settings


def kafka_records(
    spark: SparkSession, settings: PulseSettings, starting_offsets: str, max_offsets: int | None = None
) -> DataFrame:
    """The topic as a stream of raw records, read with nothing of Pulse in between (at most `max_offsets`
    records a micro-batch, when given)."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", settings.kafka_topic)
        .option("startingOffsets", starting_offsets)
    )
    if max_offsets is not None:
        reader = reader.option("maxOffsetsPerTrigger", max_offsets)
    return reader.load()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--checkpoint", required=True)
    args = parser.parse_args()
    settings = load_settings()
    began = time.monotonic()
    spark = get_spark("pulse-bench-ceiling", settings)
    session_s = time.monotonic() - began
    began = time.monotonic()
    query = (
        kafka_records(spark, settings, "earliest")
        .writeStream.format("delta")
        .option("checkpointLocation", args.checkpoint)
        .trigger(availableNow=True)
        .start(args.target)
    )
    query.awaitTermination()
    copy_s = time.monotonic() - began
    rows = spark.read.format("delta").load(args.target).count()
    print(json.dumps({"session_s": round(session_s, 2), "copy_s": round(copy_s, 3), "rows": rows}))
    spark.stop()


if __name__ == "__main__":
    main()
