"""The keyed_state benchmark's operator does what it is timed for, on real Spark: per viewer, across
micro-batches, it keeps each event once and emits its share of the minutes the new events touch."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.keyed_state import STATE_CONF, viewer_shares
from tests.benchmarks.jvm_child import run_with_operators

T0 = datetime(2026, 12, 5, 23, 59, tzinfo=UTC)


def _event(event_id: str, user: str, at_s: float, event: str) -> str:
    stamp = (T0 + timedelta(seconds=at_s)).isoformat().replace("+00:00", "Z")
    return json.dumps({"event_id": event_id, "timestamp": stamp, "event": event, "user_id": user,
                       "video_id": "video_1"})  # fmt: skip


def _counted_by_batch(spark: Any, root: Path, mode: str) -> dict[tuple[int, int], list[int]]:
    """Two micro-batches of a file stream through the operator: per (batch, minute), the new events,
    messages and likes its shares count over every key (viewer or bucket)."""
    from pyspark.sql import functions as F

    source = root / "events"
    source.mkdir()
    # Two micro-batches (one file each): the second repeats "b" (a duplicate) and adds "d" to user_1.
    first_file = [_event("a", "user_1", 0, "join"), _event("b", "user_1", 10, "chat")]
    (source / "1.json").write_text("\n".join([*first_file, _event("c", "user_2", 70, "like")]))
    (source / "2.json").write_text(
        "\n".join([_event("b", "user_1", 10, "chat"), _event("d", "user_1", 20, "chat")])
    )
    parsed = (
        spark.readStream.schema(
            "event_id string, timestamp string, event string, user_id string, video_id string"
        )
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .withColumn("t", F.unix_micros(F.to_timestamp("timestamp")))
        .drop("timestamp")
    )
    emitted: list[tuple[int, dict[str, Any]]] = []
    previous = {key: spark.conf.get(key, None) for key in STATE_CONF}
    for key, value in STATE_CONF.items():
        spark.conf.set(key, value)
    try:
        query = (
            viewer_shares(parsed, mode)
            .writeStream.foreachBatch(
                lambda frame, batch_id: emitted.extend((batch_id, row.asDict()) for row in frame.collect())
            )
            .option("checkpointLocation", str(root / "checkpoint"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination(300)
    finally:
        for key, value in previous.items():
            spark.conf.unset(key) if value is None else spark.conf.set(key, value)
    counted: dict[tuple[int, int], list[int]] = {}
    for batch_id, row in emitted:
        cell = counted.setdefault((batch_id, row["minute"]), [0, 0, 0])
        for i, name in enumerate(("events", "messages", "likes")):
            cell[i] += row[name]
    return counted


def _assert_each_event_counted_once(counted: dict[tuple[int, int], list[int]]) -> None:
    minute = int(T0.timestamp()) * 1_000_000
    # Batch 0: user_1's a and b in the first minute, user_2's like in the next (past midnight); batch 1:
    # only d is new, b is a duplicate.
    assert counted == {(0, minute): [2, 1, 0], (0, minute + 60_000_000): [1, 0, 1], (1, minute): [1, 1, 0]}


@pytest.mark.parametrize("mode", ["rows", "pandas", "buckets"])
def test_the_keyed_operator_counts_each_event_once_across_batches(
    spark: Any, tmp_path: Path, mode: str
) -> None:
    _assert_each_event_counted_once(_counted_by_batch(spark, tmp_path, mode))


@pytest.mark.e2e
def test_the_jvm_operator_counts_each_event_once_across_batches(tmp_path: Path, jars_dir: Path) -> None:
    """The Java operator needs its jar on the JVM's classpath at start, so it runs in a Spark of its own."""
    printed = run_with_operators("tests.benchmarks.test_keyed_state", tmp_path, jars_dir)
    _assert_each_event_counted_once({(b, m): cell for b, m, cell in printed})


if __name__ == "__main__":
    from pulse.spark import get_spark

    session = get_spark("pulse-tests-jvm-operator")
    counted = _counted_by_batch(session, Path(sys.argv[1]), "jvm")
    session.stop()
    print(json.dumps([[batch, minute, cell] for (batch, minute), cell in counted.items()]))
