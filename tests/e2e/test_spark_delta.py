"""Spark reads the real topic with format("kafka"), writes Delta; deltalake reads the same rows back."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from tests.e2e.conftest import Broker

pytestmark = pytest.mark.e2e


def test_kafka_to_delta_round_trip(spark, broker: Broker, tmp_path: Path) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for i in range(500):
        producer.produce(broker.topic, key=f"video_{i % 50}", value=f'{{"n": {i}}}')
    assert producer.flush(30) == 0

    raw = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", broker.bootstrap)
        .option("subscribe", broker.topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )
    table = str(tmp_path / "events_raw")
    (
        raw.selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "partition", "offset")
        .write.format("delta")
        .mode("overwrite")
        .save(table)
    )

    read_back = DeltaTable(table).to_pyarrow_table()
    assert read_back.num_rows == 500
    assert sorted(read_back.column("value").to_pylist()) == sorted(f'{{"n": {i}}}' for i in range(500))
    assert set(read_back.column("partition").to_pylist()) == {0, 1, 2}


def test_a_table_creation_killed_before_its_first_commit_is_redone(spark, tmp_path) -> None:
    """A SIGKILL mid-create leaves `_delta_log` with only temporary files; the next start creates it,
    through Spark (a clustered table) and through deltalake (a local lake's tables)."""
    from pulse import io
    from pulse.tables import GOLD_TABLES

    schema, _ = GOLD_TABLES["events_by_type"]
    for name, cluster_by in (("clustered", ("window_start", "video_id")), ("plain", ())):
        path = tmp_path / name
        (path / "_delta_log" / "_staged_commits").mkdir(parents=True)
        (path / "_delta_log" / ".00000000000000000000.json.0f.tmp").write_text("{}")
        io.ensure_delta_table(spark, str(path), schema, cluster_by=cluster_by)
        assert (path / "_delta_log" / "00000000000000000000.json").exists(), name
        assert io.is_delta_table(spark, str(path)), name
        assert spark.read.format("delta").load(str(path)).schema == schema, name
