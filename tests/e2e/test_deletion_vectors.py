"""Deletion vectors, which Databricks (DBR 14+) turns on for new tables: Pulse creates its tables without
them, whichever creator runs, and a Gold table that has them (one an earlier Pulse made on Databricks)
still reads with deltalake and with the dashboard's reader, equal to what Spark reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pulse import io
from pulse.jobs.medallion import ensure_tables
from pulse.tables import spark_schema
from pulse_core import catalogue
from pulse_core.settings import PulseSettings
from pulse_dashboard.gold import GoldTable, read_gold

pytestmark = pytest.mark.e2e

# Delta's session default for new tables' properties: what Databricks sets for deletion vectors.
DATABRICKS_DEFAULT = "spark.databricks.delta.properties.defaults.enableDeletionVectors"
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ACTIVITY = catalogue.GOLD_VIDEO_ACTIVITY


def _has_deletion_vectors(path: str) -> bool:
    """The table has the feature (which alone makes deltalake's pyarrow reads refuse it)."""
    return "deletionVectors" in (DeltaTable(path).protocol().reader_features or [])


@pytest.fixture
def databricks_defaults(spark):
    spark.conf.set(DATABRICKS_DEFAULT, "true")
    try:
        yield spark
    finally:
        spark.conf.unset(DATABRICKS_DEFAULT)


@pytest.fixture
def spark_creates(monkeypatch: pytest.MonkeyPatch) -> None:
    """`io.ensure_delta_table` creates local tables with Spark, as it does a cloud lake's."""
    monkeypatch.setattr(io, "on_local_disk", lambda _path: False)


def test_tables_are_created_without_deletion_vectors_where_new_tables_get_them(
    databricks_defaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spark = databricks_defaults
    # Spark's creator (a cloud lake's), and deltalake's (a local lake's), from the catalogue.
    spark_made = {t: f"{tmp_path}/spark/{t.layer}/{t.name}" for t in catalogue.TABLES}
    with monkeypatch.context() as patch:
        patch.setattr(io, "on_local_disk", lambda _path: False)
        plain = f"{tmp_path}/plain"
        io.ensure_delta_table(spark, plain, spark_schema(ACTIVITY))
        assert _has_deletion_vectors(plain), "the session default should turn deletion vectors on"
        for table, path in spark_made.items():
            io.ensure_delta_table(spark, path, spark_schema(table), table.partition_by, table.cluster_by,
                                  table.properties)  # fmt: skip
    settings = PulseSettings(home=tmp_path / "local")
    ensure_tables(spark, settings)
    local_made = {t: settings.table_path(t.layer, t.name) for t in catalogue.TABLES}
    for path in [*spark_made.values(), *local_made.values()]:
        assert not _has_deletion_vectors(path), path
        assert DeltaTable(path).metadata().configuration["delta.enableDeletionVectors"] == "false"

    # Spark's DELETE on such a table rewrites files instead of writing deletion vectors.
    gold = spark_made[ACTIVITY]
    io.append(spark.createDataFrame(_activity(range(20)), schema=spark_schema(ACTIVITY)), gold, "seed")
    io.delete_where(spark, gold, "like_count = 3")
    assert DeltaTable(gold).deletion_vectors().read_all().num_rows == 0
    assert DeltaTable(gold).to_pyarrow_table(filters=[("video_id", "=", "video_1")]).num_rows == 6


def _activity(minutes: range, likes: int | None = None) -> pa.Table:
    """video_activity rows, one per minute over three videos; `like_count` the minute mod 5 unless given."""
    starts = [T0 + timedelta(minutes=m) for m in minutes]
    return pa.table(
        {
            "window_start": starts,
            "window_end": [s + timedelta(minutes=1) for s in starts],
            "video_id": [f"video_{m % 3}" for m in minutes],
            "active_viewers": [m for m in minutes],
            "concurrent_viewers": [m // 2 for m in minutes],
            "message_count": [1 for _ in minutes],
            "like_count": [m % 5 if likes is None else likes for m in minutes],
            "event_count": [10 + m for m in minutes],
        },
        schema=ACTIVITY.arrow_schema(),
    )


def _sorted(table: pa.Table) -> list[tuple]:
    return sorted(tuple(row.values()) for row in table.select(list(ACTIVITY.column_names)).to_pylist())


def test_a_gold_table_with_deletion_vectors_reads_with_deltalake_and_the_dashboard(
    spark, spark_creates: None, tmp_path: Path
) -> None:
    path, schema = f"{tmp_path}/video_activity", spark_schema(ACTIVITY)
    io.ensure_delta_table(spark, path, schema, properties={"delta.enableDeletionVectors": "true"})
    io.append(spark.createDataFrame(_activity(range(120)), schema=schema).coalesce(1), path, "seed")
    # Spark's MERGE and DELETE mark rows deleted in deletion vectors instead of rewriting the file.
    changed = spark.createDataFrame(_activity(range(30, 40), likes=99), schema=schema)
    io.merge_upsert(spark, path, changed, ACTIVITY.keys, io.TimeRange("window_start", T0))
    io.delete_where(spark, path, "like_count = 4")
    marked = DeltaTable(path).deletion_vectors().read_all()
    assert marked.num_rows >= 1, "Spark should have written deletion vectors"

    expected = _sorted(io.read_delta(spark, path).toArrow())
    assert len(expected) == 120 - 22  # 24 minutes have 4 likes; 2 of them were updated to 99 first
    assert _sorted(pa.RecordBatchReader.from_stream(DeltaTable(path).scan()).read_all()) == expected

    shown = read_gold(GoldTable("video_activity", path, {}))
    assert _sorted(pa.Table.from_pandas(shown, preserve_index=False)) == expected
    start, end = T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)
    some = read_gold(GoldTable("video_activity", path, {}), start=start, end=end, videos=["video_1"])
    assert _sorted(pa.Table.from_pandas(some, preserve_index=False)) == [
        row for row in expected if start <= row[0] < end and row[2] == "video_1"
    ]
