"""The keyed engine's query reads and checks each record once (`keyed.with_changes`): its two branches,
the checked records and `ViewerChanges`, read one exchange of the checked records partitioned by viewer,
so the second is a reused exchange, and the operator adds no shuffle of its own. Checked on Spark's
executed plan of a real streaming query over a rate source, with a rejected record in every ten."""

from __future__ import annotations

import re
import time
from pathlib import Path

from pyspark.sql import functions as F

from pulse.jobs import keyed
from pulse.tables import BRONZE_EVENTS_RAW
from pulse_core.settings import PulseSettings

PARTITIONS = 3


def _records(spark):
    """Bronze-shaped records from a rate source: valid events of six viewers, every tenth one not JSON."""
    rate = spark.readStream.format("rate").option("rowsPerSecond", 200).load()
    n = F.col("value")
    event = F.to_json(
        F.struct(
            F.concat(F.lit("e-"), n.cast("string")).alias("event_id"),
            F.date_format("timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'").alias("timestamp"),
            F.lit("heartbeat").alias("event"),
            F.concat(F.lit("user_"), (n % 3).cast("string")).alias("user_id"),
            F.concat(F.lit("video_"), (n % 2).cast("string")).alias("video_id"),
        )
    )
    value = F.when(n % 10 == 0, F.lit("not json")).otherwise(event)
    return (
        rate.select(
            F.lit(None).cast("string").alias("key"),
            value.cast("binary").alias("value"),
            F.lit("plan").alias("topic"),
            F.lit(0).alias("partition"),
            n.alias("offset"),
            F.col("timestamp").alias("kafka_timestamp"),
            F.current_timestamp().alias("ingested_at"),
        )
        .withColumn("ingest_date", F.to_date("ingested_at"))
        .select(*BRONZE_EVENTS_RAW.fieldNames())
    )


def test_the_keyed_query_checks_each_record_once_and_the_operator_reads_its_exchange(
    spark, tmp_path: Path
) -> None:
    settings = PulseSettings(home=tmp_path)
    previous = spark.conf.get(keyed.PARTITIONS_CONF)
    spark.conf.set(keyed.PARTITIONS_CONF, str(PARTITIONS))
    seen: dict[str, int] = {"valid": 0, "rejected": 0, "typed": 0}

    def collect(batch, _batch_id: int) -> None:
        rows = keyed.checked_records(batch, ()).toArrow()
        checked, changes = keyed.split_rows(rows)
        seen["rejected"] += checked["reason"].null_count and checked.num_rows - checked["reason"].null_count
        seen["valid"] += checked["reason"].null_count
        seen["typed"] += int(changes.loc[changes[keyed.KIND] == "type", "events"].sum())

    try:
        output = keyed.with_changes(_records(spark), settings, keyed.EngineStart(None, None), PARTITIONS)
        query = (
            output.writeStream.foreachBatch(collect)
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(processingTime="1 second")
            .start()
        )
        try:
            deadline = time.monotonic() + 120
            while seen["valid"] < 400 and query.exception() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert query.exception() is None, query.exception()
            execution = query._jsq.streamingQuery().lastExecution()  # type: ignore[attr-defined]
            plan = execution.executedPlan().toString()
        finally:
            query.stop()
    finally:
        spark.conf.set(keyed.PARTITIONS_CONF, previous)

    exchanges = re.findall(r"^\W*(ReusedExchange|Exchange) .*$", plan, re.MULTILINE)
    assert exchanges.count("ReusedExchange") == 1, plan
    assert exchanges.count("Exchange") == 1, plan  # no shuffle of the operator's own
    assert re.search(rf"Exchange hashpartitioning\(user_id#\d+, video_id#\d+, {PARTITIONS}\)", plan), plan
    assert plan.count("from_json(") == 1, plan  # the records are parsed once
    assert "TransformWithState" in plan, plan
    # Every valid event reached the operator once, and no rejected one did.
    assert seen["rejected"] > 0
    assert seen["typed"] == seen["valid"], seen
