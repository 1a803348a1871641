"""Where a job starts when its checkpoint cannot tell it: from what the lake already holds.

A checkpoint records how far one query has read. It is lost on purpose by a state reset (the deploy's
`reset_state`), and it knows nothing of what another job wrote: `pulse pipeline all` and the split
jobs (`bronze`, then `silver`) keep separate checkpoints over the same tables. Reading Kafka from the
earliest offset again would land every retained record a second time. So the lake is the record of
what was done, and each job reads it before it starts (docs/pipeline.md, "Resets and job modes"):

- **Bronze holds a prefix of each Kafka partition**: every writer lands records in offset order, and
  `all` appends a batch to Bronze only after its Silver, quarantine and Gold commits succeeded. A
  Kafka-reading job starts after Bronze's highest offset per partition, and drops any record at or below
  it (a stale checkpoint re-reading what another job landed): `kafka_starting_offsets`, `not_landed`.
- **Everything Bronze held at `all`'s newest commit is refined.** The refine job (`silver`) starting
  without a checkpoint reads Bronze's changes from that commit on (`refine_starting_version`), and `all`
  refines first what the split jobs landed and did not refine yet (`bronze_has_unrefined_rows`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pulse import io
from pulse.preflight import on_local_disk
from pulse.tables import BRONZE_EVENTS_RAW
from pulse.transforms.bronze import to_bronze
from pulse_core import catalogue
from pulse_core.progress import batch_marker
from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.pipeline")
# The `pulse_run` of `all`'s commits starts with its checkpoint name (`pulse.jobs.stream.FROM_KAFKA`).
ALL_RUN_PREFIX = "pipeline-"
# The operation Delta's streaming sink records (the `bronze` job's appends).
STREAMING_APPEND = "STREAMING UPDATE"
EARLIEST = -2  # Spark's Kafka source: -2 in a starting-offsets JSON means the earliest offset
# The run named in `mark_refined`'s commit: an `all` run (the prefix) that wrote no batch.
REFINED_MARK_RUN = f"{ALL_RUN_PREFIX}refined"


def bronze_high_water(spark: SparkSession, bronze_path: str, topic: str) -> dict[int, int]:
    """The highest Kafka offset Bronze holds per partition of `topic`."""
    return io.kafka_high_water(spark, bronze_path, "partition", "offset", where=("topic", topic))


def kafka_starting_offsets(topic: str, partitions: int | None, high_water: dict[int, int]) -> str:
    """Spark's `startingOffsets` for a query without a checkpoint: after what Bronze holds.

    Spark needs every partition named once any is; without the partition count the query starts at the
    earliest offsets and `not_landed` drops what Bronze holds (the same rows, read for nothing).
    """
    if not high_water:
        return "earliest"
    if partitions is None or partitions < max(high_water) + 1:
        return "earliest"
    offsets = {str(p): high_water[p] + 1 if p in high_water else EARLIEST for p in range(partitions)}
    return json.dumps({topic: offsets})


def not_landed(high_water: dict[int, int]) -> Column:
    """True for Kafka records Bronze does not hold yet: above its highest offset in their partition."""
    bound = F.lit(-1).cast("long")
    for partition, offset in sorted(high_water.items()):
        bound = F.when(F.col("partition") == partition, F.lit(offset).cast("long")).otherwise(bound)
    return F.col("offset") > bound


def kafka_records(
    spark: SparkSession,
    settings: PulseSettings,
    checkpoint: str,
    max_offsets_per_trigger: int | None,
    partitions: int | None,
) -> DataFrame:
    """The topic as Bronze rows, without the records Bronze holds already (`pulse.jobs.positions`): a
    query without a checkpoint starts after them, and one with a stale checkpoint drops them."""
    high_water = bronze_high_water(spark, settings.table_path("bronze", "events_raw"), settings.kafka_topic)
    source = io.KafkaSource.from_settings(settings, max_offsets_per_trigger)
    if high_water and not io.has_checkpoint(spark, checkpoint):
        start = kafka_starting_offsets(settings.kafka_topic, partitions, high_water)
        log.info(
            f"{checkpoint.rsplit('/', 1)[-1]}: no checkpoint; starting after what Bronze holds "
            f"(offsets {', '.join(f'{p}: {o:,}' for p, o in sorted(high_water.items()))})"
        )
        source = replace(source, starting_offsets=start)
    rows = to_bronze(io.read_kafka_stream(spark, source))
    return rows.where(not_landed(high_water)) if high_water else rows


def is_all_commit(commit: io.Commit) -> bool:
    """True for a commit `pulse pipeline all` made (its batch marker names an `all` run)."""
    try:
        record = json.loads(commit.user_metadata or "")
        return str(record.get("pulse_run", "")).startswith(ALL_RUN_PREFIX)
    except (ValueError, AttributeError):
        return False


def _history(spark: SparkSession, bronze_path: str) -> list[io.Commit]:
    return io.commit_history(spark, bronze_path, None)


def newest_all_version(spark: SparkSession, bronze_path: str) -> int | None:
    """The version of Bronze's newest commit by `pulse pipeline all`, or None."""
    return next((c.version for c in _history(spark, bronze_path) if is_all_commit(c)), None)


def refine_starting_version(spark: SparkSession, bronze_path: str) -> int | None:
    """Where the refine job starts without a checkpoint: at `all`'s newest Bronze commit, or None (from
    the first row) when `all` never wrote Bronze.

    Everything up to that commit is refined; the refine job reads the commit itself again because Delta
    refuses to start a stream at a version that does not exist yet. Its rows (one batch of `all`, or
    none: `mark_refined`) land nowhere twice: Silver and quarantine appends skip what they hold.
    """
    return newest_all_version(spark, bronze_path)


def bronze_has_unrefined_rows(spark: SparkSession, bronze_path: str, refine_checkpointed: bool) -> bool:
    """True when the split jobs may have landed Bronze rows that were not refined into Silver and Gold:
    the refine job has a checkpoint, or `bronze` appended after `all`'s newest commit."""
    if refine_checkpointed:
        return True
    for commit in _history(spark, bronze_path):
        if is_all_commit(commit):
            return False
        if commit.operation == STREAMING_APPEND:
            return True
    return False


def mark_refined(spark: SparkSession, bronze_path: str) -> None:
    """Commit an empty Bronze append marked as `all`'s: everything Bronze holds is refined (after `all`
    refined the split jobs' rows), so a crash before `all`'s first batch does not refine them again."""
    marker = batch_marker(REFINED_MARK_RUN, -1)
    if on_local_disk(bronze_path):
        schema = catalogue.BRONZE_EVENTS_RAW.arrow_schema()
        io.append_with_delta_rs(
            bronze_path, schema.empty_table(), marker, (f"pulse-{REFINED_MARK_RUN}", _now_ms())
        )
    else:
        io.append(spark.createDataFrame([], BRONZE_EVENTS_RAW), bronze_path, marker)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
