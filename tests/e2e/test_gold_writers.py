"""The two Gold writers, delta-rs (local lakes) and Spark (cloud lakes), commit the same rows and the same
progress record, and a table delta-rs cannot write goes to Spark with a clear reason."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pulse import io
from pulse.jobs.medallion import GoldUpdate, MedallionWriter, ensure_tables, read_progress
from pulse.tables import GOLD_TABLES, GOLD_USER_SESSIONS
from pulse_core.progress import progress_metadata
from pulse_core.settings import PulseSettings
from pulse_dashboard.gold import GoldTable, read_gold

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _sessions(*rows: tuple[str, int, int, int]) -> pa.Table:
    """user_sessions rows from (user, start minute, end minute, events)."""
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "video_id": ["v1"] * len(rows),
            "session_start": [T0 + timedelta(minutes=r[1]) for r in rows],
            "session_end": [T0 + timedelta(minutes=r[2]) for r in rows],
            "duration_seconds": [60.0 * (r[2] - r[1]) for r in rows],
            "event_count": [r[3] for r in rows],
            "message_count": [0] * len(rows),
            "ended_by_leave": [False] * len(rows),
        }
    )


def _contents(path: Path) -> list[tuple]:
    table = DeltaTable(str(path)).to_pyarrow_table()
    columns = ("user_id", "session_start", "session_end", "event_count")
    return sorted(tuple(row[c] for c in columns) for row in table.to_pylist())


def test_both_writers_commit_the_same_rows_and_progress(spark, tmp_path: Path) -> None:
    seed = _sessions(("a", 0, 5, 3), ("b", 0, 2, 1), ("b", 3, 4, 1), ("c", 1, 4, 2), ("old", -60, -55, 9))
    # One batch: a's session grows; a late event of b's bridges its two sessions into one (the second
    # row is stale); d is new; and the prune condition keeps the hour-old session out of reach.
    rows = _sessions(("a", 0, 7, 4), ("b", 0, 4, 3), ("d", 8, 9, 1))
    stale = _sessions(("b", 3, 4, 1))
    _, keys = GOLD_TABLES["user_sessions"]
    prune = io.TimeRange("session_end", datetime(2026, 11, 28, 11, 30, tzinfo=UTC))
    metadata = progress_metadata("run-1", 7, T0 + timedelta(minutes=9))
    results = {}
    for local in (True, False):
        path = tmp_path / f"sessions-{'delta-rs' if local else 'spark'}"
        io.ensure_delta_table(spark, str(path), GOLD_USER_SESSIONS)
        io.append(spark.createDataFrame(seed, schema=GOLD_USER_SESSIONS), str(path), "seed")
        spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", metadata)
        try:
            GoldUpdate(str(path), GOLD_USER_SESSIONS, keys, prune, rows, stale).merge(spark, metadata, local)
        finally:
            spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
        results[local] = _contents(path)
        # Spark reads the progress record of either writer's commit (the dashboard reads it with delta-rs).
        progress = read_progress(spark, str(path))
        assert progress is not None
        assert (progress.batch_id, progress.newest_event_time) == (7, T0 + timedelta(minutes=9))
        assert DeltaTable(str(path)).history(1)[0]["userMetadata"] == metadata
        # The dashboard's read, with a video filter, works on files either writer made (delta-rs writes
        # strings as Arrow string views, which a pyarrow scan filter cannot compare).
        shown = read_gold(GoldTable("user_sessions", str(path), {}), videos=["v1"], start=T0)
        assert sorted(shown["user_id"]) == ["a", "b", "c", "d"]
        assert read_gold(GoldTable("user_sessions", str(path), {}), videos=["other"]).empty
    assert results[True] == results[False]
    assert [r[0] for r in results[True]] == ["a", "b", "c", "d", "old"]
    assert {r[0]: r[3] for r in results[True]} == {"a": 4, "b": 3, "c": 2, "d": 1, "old": 9}


def test_a_clustered_gold_table_is_merged_by_spark(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Gold tables made by earlier versions were clustered, which delta-rs does not write."""
    settings = PulseSettings(home=tmp_path)
    ensure_tables(spark, settings)
    clustered = settings.table_path("gold", "video_activity")
    shutil.rmtree(clustered)
    schema, _ = GOLD_TABLES["video_activity"]
    io.ensure_delta_table(spark, clustered, schema, cluster_by=("window_start", "video_id"))
    assert "clustering" in (io.delta_rs_refusal(clustered) or "")
    assert io.delta_rs_refusal(settings.table_path("gold", "events_by_type")) is None

    with caplog.at_level(logging.WARNING, logger="pulse.pipeline"):
        writer = MedallionWriter(spark, settings, "run-1", write_bronze=True)
        local = writer.gold_by_delta_rs()
    assert local[clustered] is False
    assert local[settings.table_path("gold", "events_by_type")] is True
    assert "pulse backfill" in caplog.text

    monkeypatch.setenv("PULSE_GOLD_WRITER", "delta-rs")
    strict = MedallionWriter(spark, PulseSettings(home=tmp_path), "run-1", write_bronze=True)
    with pytest.raises(RuntimeError, match=r"PULSE_GOLD_WRITER=delta-rs cannot write gold\.video_activity"):
        strict.gold_by_delta_rs()

    monkeypatch.setenv("PULSE_GOLD_WRITER", "spark")
    assert not any(
        MedallionWriter(spark, PulseSettings(home=tmp_path), "r", True).gold_by_delta_rs().values()
    )
