"""The Gold MERGE delta-rs commits from the driver (`io.merge_with_delta_rs`): MERGE semantics within the
prune range, and files that every common reader can filter (no Arrow string views), without Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from pulse import io
from pulse_core.catalogue import GOLD_EVENTS_BY_TYPE

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SCHEMA = GOLD_EVENTS_BY_TYPE.arrow_schema()
KEYS = GOLD_EVENTS_BY_TYPE.keys


def _windows(*rows: tuple[int, str, str, int]) -> pa.Table:
    """events_by_type rows from (minute, video, event, count)."""
    starts = [T0 + timedelta(minutes=r[0]) for r in rows]
    return pa.table(
        {
            "window_start": starts,
            "window_end": [s + timedelta(minutes=1) for s in starts],
            "video_id": [r[1] for r in rows],
            "event": [r[2] for r in rows],
            "event_count": [r[3] for r in rows],
        },
        schema=SCHEMA,
    )


def _contents(path: Path) -> list[tuple[int, str, str, int]]:
    table = DeltaTable(str(path)).to_pyarrow_table()
    return sorted(
        (int((r["window_start"] - T0).total_seconds() // 60), r["video_id"], r["event"], r["event_count"])
        for r in table.to_pylist()
    )


@pytest.fixture
def gold(tmp_path: Path) -> Path:
    path = tmp_path / "events_by_type"
    DeltaTable.create(str(path), SCHEMA, configuration=GOLD_EVENTS_BY_TYPE.properties)
    seed = _windows((0, "v1", "join", 1), (1, "v1", "join", 2), (2, "v1", "like", 3), (2, "v2", "like", 4),
                    (9, "v1", "join", 5))  # fmt: skip
    write_deltalake(str(path), seed, mode="append")
    return path


def _minutes(low: int, high: int | None = None) -> io.TimeRange:
    end = None if high is None else T0 + timedelta(minutes=high)
    return io.TimeRange("window_start", T0 + timedelta(minutes=low), end)


def test_upserts_by_key_deletes_stale_rows_and_keeps_the_rest(gold: Path) -> None:
    rows = _windows((1, "v1", "join", 20), (2, "v3", "share", 1))
    stale = _windows((2, "v1", "like", 3))
    io.merge_with_delta_rs(str(gold), rows, KEYS, _minutes(1, 3), "batch-7", stale)

    assert _contents(gold) == [(0, "v1", "join", 1), (1, "v1", "join", 20), (2, "v2", "like", 4),
                               (2, "v3", "share", 1), (9, "v1", "join", 5)]  # fmt: skip
    assert DeltaTable(str(gold)).history(1)[0]["userMetadata"] == "batch-7"


def test_the_prune_range_bounds_what_it_can_match(gold: Path) -> None:
    """A source row whose key the target holds only outside the range does not match it (as in Spark's
    MERGE, whose condition carries the range), and nothing outside the range changes."""
    io.merge_with_delta_rs(str(gold), _windows((0, "v1", "join", 7)), KEYS, _minutes(0, 1), "b1")
    io.merge_with_delta_rs(str(gold), _windows((9, "v1", "join", 8)), KEYS, _minutes(5), "b2")
    assert _contents(gold) == [(0, "v1", "join", 7), (1, "v1", "join", 2), (2, "v1", "like", 3),
                               (2, "v2", "like", 4), (9, "v1", "join", 8)]  # fmt: skip


def test_a_source_row_outside_the_prune_range_is_inserted(gold: Path) -> None:
    """As Spark's MERGE does: nothing in the range matches it. The replaced range widens to hold it."""
    io.merge_with_delta_rs(
        str(gold), _windows((1, "v1", "join", 9), (12, "v4", "like", 1)), KEYS, _minutes(1, 2), "b"
    )
    assert _contents(gold) == [(0, "v1", "join", 1), (1, "v1", "join", 9), (2, "v1", "like", 3),
                               (2, "v2", "like", 4), (9, "v1", "join", 5), (12, "v4", "like", 1)]  # fmt: skip


def test_a_commit_race_with_a_compaction_is_redone(gold: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compaction that commits between the range's read and its replace makes the replace fail on the
    version it read; it is redone from the new version, and no row is lost or doubled."""
    import deltalake

    write, calls = deltalake.write_deltalake, []

    def compacted_first(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            DeltaTable(str(gold)).optimize.compact()
        write(*args, **kwargs)  # type: ignore[arg-type]

    write_deltalake(str(gold), _windows((3, "v1", "join", 1)), mode="append")  # two files to compact
    monkeypatch.setattr(deltalake, "write_deltalake", compacted_first)
    io.merge_with_delta_rs(str(gold), _windows((2, "v1", "like", 30)), KEYS, _minutes(1, 4), "b")
    assert len(calls) == 2
    assert _contents(gold) == [(0, "v1", "join", 1), (1, "v1", "join", 2), (2, "v1", "like", 30),
                               (2, "v2", "like", 4), (3, "v1", "join", 1), (9, "v1", "join", 5)]  # fmt: skip


def test_files_it_writes_filter_on_strings_with_pyarrow(gold: Path) -> None:
    """delta-rs's own MERGE writes strings as Arrow string views, which a pyarrow filter cannot compare
    (`Function 'equal' has no kernel matching input types (string, string_view)`)."""
    for minute in range(3, 8):
        rows = _windows((minute, "v1", "join", minute), (minute, "video_1", "like", 1))
        io.merge_with_delta_rs(str(gold), rows, KEYS, _minutes(minute - 1, minute + 2), f"batch-{minute}")
    table = DeltaTable(str(gold))
    for uri in table.file_uris():
        types = {field.name: field.type for field in pq.read_schema(uri)}
        assert types["video_id"] == pa.string(), uri
        assert types["event"] == pa.string(), uri
    shown = table.to_pyarrow_table(filters=[("video_id", "=", "video_1")])
    assert shown.num_rows == 5
    assert table.to_pyarrow_table(filters=[("event", "in", ["like", "share"])]).num_rows == 7


class _Reads:
    """Counts the range reads `merge_with_delta_rs` makes (deltalake's `to_pyarrow_table`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        read = DeltaTable.to_pyarrow_table

        def counted(table: DeltaTable, *args: object, **kwargs: object) -> pa.Table:
            self.count += 1
            return read(table, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(DeltaTable, "to_pyarrow_table", counted)


def test_a_merge_starts_from_what_the_last_one_left_while_its_commit_is_the_newest(
    gold: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's batches in a row: the second MERGE reuses the rows the first wrote in its range
    instead of reading them, and the table is the same as with two reads."""
    written: dict[str, io.WrittenRange] = {}
    reads = _Reads(monkeypatch)
    io.merge_with_delta_rs(
        str(gold), _windows((1, "v1", "join", 20)), KEYS, _minutes(1), "b1", written=written
    )
    io.merge_with_delta_rs(
        str(gold), _windows((2, "v1", "like", 30)), KEYS, _minutes(2), "b2", written=written
    )
    assert reads.count == 1
    assert written[str(gold)].user_metadata == "b2"
    assert _contents(gold) == [(0, "v1", "join", 1), (1, "v1", "join", 20), (2, "v1", "like", 30),
                               (2, "v2", "like", 4), (9, "v1", "join", 5)]  # fmt: skip


def test_another_commit_in_between_makes_it_read_the_range(
    gold: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row another writer committed into the range after the last MERGE is kept: the record of that
    MERGE no longer describes the table, so the range is read again."""
    written: dict[str, io.WrittenRange] = {}
    io.merge_with_delta_rs(
        str(gold), _windows((1, "v1", "join", 20)), KEYS, _minutes(1), "b1", written=written
    )
    write_deltalake(str(gold), _windows((5, "v7", "share", 2)), mode="append")
    reads = _Reads(monkeypatch)
    io.merge_with_delta_rs(
        str(gold), _windows((2, "v1", "like", 30)), KEYS, _minutes(2), "b2", written=written
    )
    assert reads.count == 1
    assert (5, "v7", "share", 2) in _contents(gold)
    assert len(_contents(gold)) == 6


def test_a_range_reaching_below_the_recorded_one_is_read(gold: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: dict[str, io.WrittenRange] = {}
    io.merge_with_delta_rs(
        str(gold), _windows((2, "v1", "like", 30)), KEYS, _minutes(2), "b1", written=written
    )
    reads = _Reads(monkeypatch)
    io.merge_with_delta_rs(
        str(gold), _windows((1, "v1", "join", 20)), KEYS, _minutes(1), "b2", written=written
    )
    assert reads.count == 1
    assert _contents(gold) == [(0, "v1", "join", 1), (1, "v1", "join", 20), (2, "v1", "like", 30),
                               (2, "v2", "like", 4), (9, "v1", "join", 5)]  # fmt: skip
