"""The Gold fixture generator: schemas, determinism and shape."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from pulse_core.contract import EVENT_TYPES
from testkit.gold_fixture import GOLD_SCHEMAS, floor_minute, simulate_gold, write_gold_fixture
from tests.dashboard.conftest import NOW


def test_same_seed_same_rows_and_other_seed_other_rows() -> None:
    first, _ = simulate_gold(now=NOW, hours=1, videos=3, seed=5)
    again, _ = simulate_gold(now=NOW, hours=1, videos=3, seed=5)
    other, _ = simulate_gold(now=NOW, hours=1, videos=3, seed=6)
    for name in GOLD_SCHEMAS:
        assert first[name].equals(again[name])
    assert not first["user_sessions"].equals(other["user_sessions"])


def test_tables_have_the_gold_schema_and_shape(tmp_path: Path) -> None:
    fixture = write_gold_fixture(str(tmp_path), now=NOW, hours=2, videos=3, seed=1)
    assert fixture.last_window == floor_minute(NOW)
    assert fixture.first_window == fixture.last_window - timedelta(minutes=119)
    for name, schema in GOLD_SCHEMAS.items():
        delta = DeltaTable(f"{tmp_path}/gold/{name}")
        data = delta.to_pyarrow_table()
        assert data.schema.equals(schema), name
        assert data.num_rows == fixture.rows[name] > 0
        assert len(delta.file_uris()) == 2  # one append per hour
    activity = DeltaTable(f"{tmp_path}/gold/video_activity").to_pyarrow_table().to_pandas()
    assert len(activity) == 120 * 3
    assert ((activity["window_end"] - activity["window_start"]) == timedelta(minutes=1)).all()
    assert (activity["active_viewers"] >= activity["concurrent_viewers"]).all()
    events = DeltaTable(f"{tmp_path}/gold/events_by_type").to_pyarrow_table()
    assert set(events["event"].to_pylist()) <= set(EVENT_TYPES)
    sessions = DeltaTable(f"{tmp_path}/gold/user_sessions").to_pyarrow_table().to_pandas()
    assert (sessions["session_end"] >= sessions["session_start"]).all()
    assert (sessions["session_end"] <= NOW).all()
    assert (
        sessions["duration_seconds"]
        == (sessions["session_end"] - sessions["session_start"]).dt.total_seconds()
    ).all()
    assert pa.types.is_timestamp(events.schema.field("window_start").type)
