"""The table catalogue is the one description of the lake: everything else is derived from it."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyspark.sql.pandas.types import to_arrow_schema

from pulse.tables import GOLD_TABLES, spark_schema
from pulse_core import catalogue
from pulse_core.catalogue import Column, Table
from pulse_core.settings import PulseSettings


@pytest.mark.parametrize("table", catalogue.TABLES, ids=lambda t: f"{t.layer}.{t.name}")
def test_spark_and_arrow_schemas_agree(table: Table) -> None:
    # What Spark's toArrow produces for the Spark schema is what the driver and the dashboard use.
    assert to_arrow_schema(spark_schema(table), timezone="UTC") == table.arrow_schema()


def test_every_layer_and_table_has_one_path() -> None:
    settings = PulseSettings(lake="abfss://{layer}@acct.dfs.core.windows.net")
    paths = {settings.table_path(t.layer, t.name) for t in catalogue.TABLES}
    assert len(paths) == len(catalogue.TABLES)
    assert (
        settings.table_path("gold", "user_sessions") == "abfss://gold@acct.dfs.core.windows.net/user_sessions"
    )
    with pytest.raises(KeyError, match=r"unknown table gold\.nope \(known: bronze\.events_raw"):
        settings.table_path("gold", "nope")


def test_gold_keys_and_time_columns() -> None:
    assert list(catalogue.GOLD) == ["events_by_type", "user_sessions", "video_activity"]
    assert GOLD_TABLES["user_sessions"][1] == ("user_id", "video_id", "session_start")
    # A session is in a range when it overlaps it; a window when it starts in it.
    assert catalogue.GOLD_USER_SESSIONS.time_bounds == ("session_end", "session_start")
    assert catalogue.GOLD_VIDEO_ACTIVITY.time_bounds == ("window_start", "window_start")
    assert catalogue.GOLD_VIDEO_ACTIVITY.freshness_column == "window_end"
    assert catalogue.BRONZE_EVENTS_RAW.partition_by == ("ingest_date",)


def test_each_table_checkpoints_on_its_own_interval() -> None:
    intervals = [t.properties["delta.checkpointInterval"] for t in catalogue.TABLES]
    assert len(set(intervals)) == len(intervals)


def test_every_table_is_created_without_deletion_vectors() -> None:
    """Explicitly, so that Databricks' default for new tables (on, from DBR 14) does not apply."""
    assert {t.properties["delta.enableDeletionVectors"] for t in catalogue.TABLES} == {"false"}


def test_a_table_that_names_a_missing_column_is_refused() -> None:
    with pytest.raises(ValueError, match=r"gold\.broken names columns it does not have: \['session_end'\]"):
        Table("broken", "gold", (Column("session_start", "timestamp"),), end_column="session_end")


def test_some_columns_of_a_table() -> None:
    schema = catalogue.SILVER_EVENTS.arrow_schema(("event_id", "event_time"))
    assert schema == pa.schema([("event_id", pa.string()), ("event_time", pa.timestamp("us", tz="UTC"))])
