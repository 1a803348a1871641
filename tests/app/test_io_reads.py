"""Reads of a table on local disk with deltalake (`pulse.io`): the newest instant from the files' statistics,
and Arrow reads cast to the catalogue's schema. Real Delta tables, no Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pulse import io

T0 = datetime(2026, 12, 5, 23, 59, 59, 999_000, tzinfo=UTC)
UTC_US = pa.timestamp("us", tz="UTC")


def _append(path: Path, times: list[datetime | None], ids: list[str]) -> None:
    table = pa.table({"event_time": pa.array(times, UTC_US), "event_id": pa.array(ids, pa.string())})
    write_deltalake(str(path), table, mode="append")


def test_the_newest_instant_is_exact_to_the_microsecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events"
    newest = T0 + timedelta(microseconds=987)  # past midnight, and below the millisecond
    _append(path, [T0 - timedelta(minutes=5), T0], ["a", "b"])
    _append(path, [newest, T0 - timedelta(hours=1)], ["c", "d"])
    _append(path, [T0 + timedelta(microseconds=500)], ["e"])
    reads: list[io.TimeRange | None] = []
    read_arrow = io.read_arrow
    monkeypatch.setattr(io, "read_arrow", lambda *args: reads.append(args[3]) or read_arrow(*args))
    assert io.newest_instant(None, str(path), "event_time") == newest
    # One read, of the rows within a millisecond of the statistics' newest: not the whole column.
    assert len(reads) == 1
    assert reads[0] is not None
    assert newest - timedelta(milliseconds=2) <= reads[0].low <= newest  # statistics keep milliseconds


def test_a_file_without_statistics_for_the_column_is_read(tmp_path: Path) -> None:
    path = tmp_path / "events"
    _append(path, [T0], ["a"])
    _append(path, [None, T0 + timedelta(seconds=1)], ["b", "c"])  # a null: the file's max is still known
    _append(path, [None], ["d"])  # only nulls: no max in the statistics, so the column is read
    assert io.newest_instant(None, str(path), "event_time") == T0 + timedelta(seconds=1)


def test_an_empty_table_has_no_newest_instant(tmp_path: Path) -> None:
    path = tmp_path / "events"
    write_deltalake(str(path), pa.table({"event_time": pa.array([], UTC_US)}))
    assert io.newest_instant(None, str(path), "event_time") is None


@pytest.mark.parametrize("since", [None, T0])
def test_read_arrow_filters_and_casts_to_the_schema(tmp_path: Path, since: datetime | None) -> None:
    path = tmp_path / "events"
    _append(path, [T0 - timedelta(seconds=1), T0, T0 + timedelta(seconds=1)], ["a", "b", "c"])
    schema = pa.schema([("event_id", pa.string()), ("event_time", UTC_US)])
    rows = io.TimeRange("event_time", since) if since else None
    table = io.read_arrow(None, str(path), schema, rows)
    assert table.schema == schema
    assert sorted(table["event_id"].to_pylist()) == (["b", "c"] if since else ["a", "b", "c"])
