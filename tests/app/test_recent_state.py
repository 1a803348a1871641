"""The pipeline's driver-side state: dedupe as Silver would, what it covers, and how it forgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from pulse.jobs.recent import EVENT_COLUMNS, RecentState, first_per_event_id
from pulse.tables import GOLD_USER_SESSIONS
from pulse.transforms.gold import SESSIONS_SCHEMA

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
EVENTS = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_time", TS),
        ("event", pa.string()),
        ("user_id", pa.string()),
        ("video_id", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
    ]
)
SESSIONS = SESSIONS_SCHEMA
assert SESSIONS.names == GOLD_USER_SESSIONS.fieldNames()


def events(*rows: tuple[str, float, int, int]) -> pa.Table:
    """(event_id, seconds after T0, partition, offset) rows."""
    return pa.Table.from_pylist(
        [
            dict(zip(EVENT_COLUMNS, (i, T0 + timedelta(seconds=s), "like", "u1", "v1", p, o), strict=True))
            for i, s, p, o in rows
        ],
        schema=EVENTS,
    )


def session(user: str, start: float, end: float) -> dict[str, object]:
    return {
        "user_id": user,
        "video_id": "v1",
        "session_start": T0 + timedelta(seconds=start),
        "session_end": T0 + timedelta(seconds=end),
        "duration_seconds": float(end - start),
        "event_count": 2,
        "message_count": 0,
        "ended_by_leave": False,
    }


def state(held: pa.Table, floor: datetime | None = None, minutes: int = 15) -> RecentState:
    return RecentState(timedelta(minutes=minutes), floor, held, SESSIONS.empty_table())


def test_first_per_event_id_keeps_the_earliest_kafka_record() -> None:
    batch = events(("a", 0, 1, 9), ("a", 0, 0, 5), ("b", 1, 0, 6), ("a", 0, 0, 7))
    unique = first_per_event_id(batch)
    assert sorted(zip(unique["event_id"].to_pylist(), unique["kafka_offset"].to_pylist(), strict=True)) == [
        ("a", 5),
        ("b", 6),
    ]


def test_first_per_event_id_keeps_the_batch_order_and_a_batch_without_copies_as_it_is() -> None:
    # The keyed engine's records arrive grouped by viewer, not in Kafka order.
    shuffled = events(("c", 2, 1, 3), ("a", 0, 0, 8), ("b", 1, 0, 2))
    assert first_per_event_id(shuffled) is shuffled
    assert first_per_event_id(shuffled.slice(0, 0)).num_rows == 0
    # With copies, the first by Kafka record wins wherever it sits, and the kept rows keep their order.
    copies = events(("c", 2, 1, 3), ("a", 0, 1, 1), ("b", 1, 0, 2), ("a", 0, 0, 8), ("c", 2, 0, 9))
    unique = first_per_event_id(copies)
    coordinates = zip(unique["kafka_partition"].to_pylist(), unique["kafka_offset"].to_pylist(), strict=True)
    assert list(zip(unique["event_id"].to_pylist(), coordinates, strict=True)) == [
        ("b", (0, 2)),
        ("a", (0, 8)),
        ("c", (0, 9)),
    ]


def test_unseen_drops_copies_but_not_the_record_itself() -> None:
    recent = state(events(("a", 0, 0, 1), ("b", 1, 0, 2)))
    # "a" from another record is a copy; "b" at its own coordinates is a replayed batch; "c" is new.
    batch = events(("a", 0, 1, 40), ("b", 1, 0, 2), ("c", 2, 0, 3))
    assert recent.unseen(batch)["event_id"].to_pylist() == ["b", "c"]


def test_add_holds_each_event_once_and_only_above_the_floor() -> None:
    recent = state(events(("a", 0, 0, 1)), floor=T0 - timedelta(minutes=1))
    recent.add(events(("a", 0, 0, 1), ("b", 5, 0, 2), ("old", -120, 0, 3)))
    assert sorted(recent.events["event_id"].to_pylist()) == ["a", "b"]
    assert recent.newest == T0 + timedelta(seconds=5)
    assert recent.covers(T0 - timedelta(minutes=1))
    assert not recent.covers(T0 - timedelta(minutes=1, microseconds=1))


def test_advance_forgets_what_falls_below_the_floor_a_minute_at_a_time() -> None:
    recent = state(events(("a", 0, 0, 1), ("b", 30, 0, 2)), minutes=1)
    recent.sessions = pa.Table.from_pylist([session("u1", -400, -250), session("u2", 0, 30)], schema=SESSIONS)
    assert recent.floor is None
    assert recent.covers(T0 - timedelta(days=365))
    recent.advance()
    assert recent.floor == T0 + timedelta(seconds=30) - timedelta(minutes=1)
    recent.add(events(("c", 150, 0, 3)))
    recent.advance()
    # The floor is now 90 s: "a" and "b" go, and with them their coordinates (a copy is no longer known).
    assert recent.floor == T0 + timedelta(seconds=90)
    assert recent.events["event_id"].to_pylist() == ["c"]
    assert recent.unseen(events(("a", 0, 1, 99)))["event_id"].to_pylist() == ["a"]
    # Sessions are kept while they could still be extended: ended at or after floor minus the gap.
    assert recent.sessions["user_id"].to_pylist() == ["u2"]
    recent.add(events(("d", 160, 0, 4)))
    recent.advance()
    assert recent.floor == T0 + timedelta(seconds=90), "under a minute of progress keeps the floor"


def test_apply_sessions_upserts_by_key_and_deletes_stale_rows() -> None:
    recent = state(events())
    recent.sessions = pa.Table.from_pylist(
        [session("u1", 0, 10), session("u2", 0, 10), session("u3", 0, 10)], schema=SESSIONS
    )
    upserted = pa.Table.from_pylist([session("u1", 0, 50), session("u4", 5, 6)], schema=SESSIONS)
    stale = pa.Table.from_pylist([session("u2", 0, 10)], schema=SESSIONS)
    recent.apply_sessions(upserted, stale)
    rows = {(r["user_id"], r["session_end"]) for r in recent.sessions.to_pylist()}
    assert rows == {
        ("u1", T0 + timedelta(seconds=50)),
        ("u3", T0 + timedelta(seconds=10)),
        ("u4", T0 + timedelta(seconds=6)),
    }
    assert recent.sessions_ending_since(T0 + timedelta(seconds=20))["user_id"].to_pylist() == ["u1"]


def test_reads_below_the_floor_are_refused() -> None:
    recent = state(events(("a", 0, 0, 1)), floor=T0)
    with pytest.raises(AssertionError, match="floor"):
        recent.events_since(T0 - timedelta(seconds=1))


def test_a_copy_under_another_viewer_is_found_with_or_without_the_events_held() -> None:
    held = events(("a", 0, 0, 1), ("b", 1, 0, 2))
    # "a" again under u2 (another viewer), "b" again under u1 (the same viewer), "c" new under u2.
    batch = pa.concat_tables([held.slice(0, 2), events(("b", 1, 1, 7))])
    batch = pa.concat_tables(
        [batch, events(("a", 0, 1, 8), ("c", 2, 1, 9)).set_column(3, "user_id", pa.array(["u2", "u2"]))]
    )
    for release in (False, True):
        recent = state(held)
        if release:
            recent.release_events()
            assert recent.events.num_rows == 0
            assert not recent.holds_events_since(T0 - timedelta(days=1)), "reads go to Delta"
        copies = recent.copies_of_other_viewers(batch)
        assert list(zip(copies["event_id"].to_pylist(), copies["kafka_offset"].to_pylist(), strict=True)) == [
            ("a", 8)
        ]
        assert recent.unseen(batch)["event_id"].to_pylist() == ["a", "b", "c"]
        recent.add(events(("d", 3, 0, 10)))
        assert recent.unseen(events(("d", 3, 1, 11))).num_rows == 0, "the ids are still held"
        assert recent.events.num_rows == (0 if release else 3)
