"""The pipeline's recent state loads the same from a local lake with deltalake as with Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from pulse import io
from pulse.jobs.medallion import ensure_tables
from pulse.jobs.recent import EVENT_COLUMNS, RecentState
from pulse.tables import GOLD_USER_SESSIONS, SILVER_EVENTS
from pulse_core.settings import PulseSettings

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _silver_rows(minutes: int) -> list[dict]:
    """One event a minute for `minutes` minutes, with every Silver column filled."""
    rows = []
    for m in range(minutes):
        moment = T0 + timedelta(minutes=m)
        rows.append(
            {
                "event_id": f"e{m}",
                "event_time": moment,
                "event": "like",
                "user_id": f"u{m % 7}",
                "video_id": "v1",
                "kafka_partition": m % 3,
                "kafka_offset": m,
                "payload": "{}",
                "ingested_at": moment,
            }
        )
    return rows


def test_deltalake_and_spark_load_the_same_state(spark, tmp_path: Path) -> None:
    settings = PulseSettings(home=tmp_path)
    ensure_tables(spark, settings)
    silver, sessions = settings.table_path("silver", "events"), settings.table_path("gold", "user_sessions")
    horizon = timedelta(minutes=15)
    empty = [
        RecentState.load(spark, silver, sessions, horizon, with_deltalake=flag) for flag in (True, False)
    ]
    assert [s.floor for s in empty] == [None, None]
    assert empty[0].events.schema == empty[1].events.schema

    io.append(spark.createDataFrame(_silver_rows(40), schema=SILVER_EVENTS), silver, "seed")
    ended = [T0 + timedelta(minutes=m) for m in (5, 20, 39)]
    sessions_rows = [
        {
            "user_id": f"u{i}",
            "video_id": "v1",
            "session_start": end - timedelta(minutes=1),
            "session_end": end,
            "duration_seconds": 60.0,
            "event_count": 2,
            "message_count": 0,
            "ended_by_leave": False,
        }
        for i, end in enumerate(ended)
    ]
    io.append(spark.createDataFrame(sessions_rows, schema=GOLD_USER_SESSIONS), sessions, "seed")

    local, remote = (
        RecentState.load(spark, silver, sessions, horizon, with_deltalake=flag) for flag in (True, False)
    )
    assert local.floor == remote.floor == T0 + timedelta(minutes=39) - horizon
    assert local.events.schema == remote.events.schema
    assert local.sessions.schema == remote.sessions.schema
    key = [("event_id", "ascending")]
    assert local.events.sort_by(key).equals(remote.events.sort_by(key))
    assert local.events.num_rows == 16  # minutes 24..39
    assert sorted(local.sessions["user_id"].to_pylist()) == sorted(remote.sessions["user_id"].to_pylist())
    assert sorted(local.sessions["user_id"].to_pylist()) == ["u1", "u2"]  # ended at or after floor - gap
    assert set(local.events.column_names) == set(EVENT_COLUMNS)
    assert isinstance(local.events, pa.Table)
