"""Gold on the driver (`pulse.transforms.gold`, the live path) equals the reference, whole and per batch.

The batch-by-batch case replays the pipeline's own update rule on plain tables: windows recomputed over
their context, sessions extended from the previous sessions or rebuilt from history for a late event,
stale sessions deleted. Late events (up to 10 minutes), same-instant leaves and ties are all generated.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from pulse.jobs.recent import RecentState
from pulse.transforms import gold
from testkit.gold_reference import differences, reference_gold

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
EVENTS = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("event", pa.string()),
        ("user_id", pa.string()),
        ("video_id", pa.string()),
    ]
)


def random_events(seed: int, n: int = 1500) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        # Mostly in order over ~25 minutes, some up to 10 minutes late, some on whole seconds (ties).
        seconds = i * 1.0 + rng.random()
        if rng.random() < 0.15:
            seconds -= rng.uniform(0, 600)
        if rng.random() < 0.2:
            seconds = float(int(seconds))
        rows.append(
            {
                "event_id": f"e{i:05d}",
                "event_time": T0 + timedelta(seconds=max(seconds, 0)),
                "event": rng.choice(["join", "heartbeat", "heartbeat", "message", "like", "leave", "share"]),
                "user_id": f"u{rng.randrange(25)}",
                "video_id": f"v{rng.randrange(3)}",
            }
        )
    return rows


SESSIONS = gold.SESSIONS_SCHEMA
SESSION_KEY = ("user_id", "video_id", "session_start")


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENTS)


def test_whole_tables_equal_the_reference() -> None:
    rows = random_events(1)
    frame = gold.events_frame(table(rows))
    windows = gold.touched_windows(frame)
    sessions = gold.sessionize(gold.as_segments(frame))
    reference = reference_gold(rows)
    assert (
        differences(
            "events_by_type", gold.events_by_type(frame, frame).to_pylist(), reference["events_by_type"]
        )
        == []
    )
    assert (
        differences(
            "video_activity",
            gold.video_activity(frame, windows).to_pylist(),
            reference["video_activity"],
        )
        == []
    )
    assert (
        differences("user_sessions", gold.sessions_table(sessions).to_pylist(), reference["user_sessions"])
        == []
    )


def upsert(current: dict, rows: list[dict], keys: tuple[str, ...], stale: list[dict] = ()) -> None:
    for row in stale:
        current.pop(tuple(row[k] for k in keys), None)
    for row in rows:
        current[tuple(row[k] for k in keys)] = row


@pytest.mark.parametrize("seed", [2, 3])
def test_batch_by_batch_equals_the_reference(seed: int) -> None:
    rows = random_events(seed)
    tables: dict[str, dict] = {"events_by_type": {}, "video_activity": {}, "user_sessions": {}}
    seen: list[dict] = []
    rebuilds = 0
    rng = random.Random(seed)
    start = 0
    while start < len(rows):
        size = rng.randint(1, 120)
        new_rows, start = rows[start : start + size], start + size
        seen += new_rows
        batch = gold.events_frame(table(new_rows))
        history = gold.events_frame(table(seen))
        windows = gold.touched_windows(batch)
        upsert(
            tables["video_activity"],
            gold.video_activity(history, windows).to_pylist(),
            ("window_start", "video_id"),
        )
        upsert(
            tables["events_by_type"],
            gold.events_by_type(history, batch).to_pylist(),
            ("window_start", "video_id", "event"),
        )
        recent = gold.sessions_frame(
            pa.Table.from_pylist(list(tables["user_sessions"].values()), schema=SESSIONS)
        )
        asked: list[int] = []

        def since(instant: int, history=history, asked=asked) -> pd.DataFrame:
            asked.append(instant)
            return history[history["t"] >= instant]

        sessions, stale = gold.update_sessions(batch, recent, since)
        rebuilds += bool(asked)
        stale_rows = gold.sessions_table(stale).to_pylist() if stale is not None else []
        upsert(tables["user_sessions"], gold.sessions_table(sessions).to_pylist(), SESSION_KEY, stale_rows)
    assert rebuilds, "late events should have made some viewers rebuild"
    reference = reference_gold(rows)
    for name, current in tables.items():
        assert differences(name, list(current.values()), reference[name]) == [], name


@pytest.mark.parametrize("seed", [3, 4])
def test_in_order_events_extend_existing_sessions_without_history(seed: int) -> None:
    """The fast path: Gold's sessions as segments plus the new events equal sessions of all the events."""
    rng = random.Random(seed)
    kinds = ["join", "leave", "heartbeat", "heartbeat", "message", "like"]
    rows = [
        {
            "event_id": f"e{i:04d}",
            "event_time": T0 + timedelta(seconds=rng.uniform(0, 1500)),
            "event": rng.choice(kinds),
            "user_id": f"u{rng.randrange(8)}",
            "video_id": "v1",
        }
        for i in range(300)
    ]
    # Each viewer's events after their own cut-off are "new"; the ones before are already in Gold.
    cut = {f"u{i}": T0 + timedelta(seconds=rng.uniform(200, 1400)) for i in range(8)}
    old = [e for e in rows if e["event_time"] < cut[e["user_id"]]]
    new = [e for e in rows if e["event_time"] >= cut[e["user_id"]]]
    existing_sessions = gold.sessionize(gold.as_segments(gold.events_frame(table(old))))
    batch = gold.events_frame(table(new))
    plan = gold.session_update_plan(batch, existing_sessions)
    assert len(plan)
    assert plan["extends"].all(), "every new event comes after its viewer's sessions"

    def no_history(_: int) -> pd.DataFrame:
        raise AssertionError("in-order events must not need history")

    sessions, stale = gold.update_sessions(batch, existing_sessions, no_history)
    assert stale is None
    kept = {(r["user_id"], r["session_start"]): r for r in gold.sessions_table(existing_sessions).to_pylist()}
    rebuilt = {(r["user_id"], r["session_start"]): r for r in gold.sessions_table(sessions).to_pylist()}
    merged = list({**kept, **rebuilt}.values())
    assert differences("user_sessions", merged, reference_gold(rows)["user_sessions"]) == []


def test_a_late_event_among_existing_ones_asks_for_a_rebuild() -> None:
    def event(i: int, seconds: float, kind: str) -> dict:
        return {"event_id": f"e{i}", "event_time": T0 + timedelta(seconds=seconds), "event": kind,
                "user_id": "a", "video_id": "v1"}  # fmt: skip

    existing = [event(0, 0, "join"), event(1, 100, "heartbeat"), event(2, 200, "heartbeat")]
    existing_sessions = gold.sessionize(gold.as_segments(gold.events_frame(table(existing))))
    late = gold.events_frame(table([event(3, 50, "leave")]))
    (plan,) = gold.session_update_plan(late, existing_sessions).to_dict("records")
    assert not plan["extends"]
    assert plan["rebuild_from"] == int(T0.timestamp() * 1_000_000)


@pytest.mark.parametrize("seed", [1, 2])
def test_session_order_matches_a_full_sort_by_ids_within_each_viewer(seed: int) -> None:
    # Whole seconds make many same-instant events per viewer; existing sessions (tie_id "") join them.
    batch = gold.events_frame(table(random_events(seed, 3000)))
    batch = batch.assign(t=(batch["t"] // 1_000_000) * 1_000_000)
    sessions = gold.sessionize(gold.as_segments(batch.iloc[::7]))
    segments = pd.concat(
        [gold.sessions_as_segments(sessions), gold.as_segments(batch)], ignore_index=True
    ).sample(frac=1, random_state=seed)  # input order must not decide ties
    keys = ["user_id", "video_id", "start", "tie_leave", "tie_id"]
    expected = segments.sort_values(keys, kind="stable")
    ordered = segments.iloc[gold.session_order(segments)]
    assert len(ordered) == len(segments)
    for pair, rows in expected.groupby(["user_id", "video_id"], sort=False):
        mine = ordered[(ordered["user_id"] == pair[0]) & (ordered["video_id"] == pair[1])]
        assert list(mine.index) == list(rows.index), pair


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(tuple(row.values()) for row in table.to_pylist())


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_window_cells_follow_the_batches_as_a_recount_would(seed: int) -> None:
    """Each batch's windows from the cells (its viewers' shares added) equal a recount of all events."""
    rows = random_events(seed, n=1200)
    rng = random.Random(seed)
    # A floor part-way in, as a pipeline that loaded its state mid-stream has: windows that reach below
    # it are not held, and the events below it never reach the cells.
    floor = int((T0 + timedelta(minutes=3, seconds=20)).timestamp() * 1_000_000)
    first = rng.randint(200, 400)
    held = [row for row in rows[:first] if row["event_time"] >= _at(floor)]
    cells = gold.WindowCells.of(gold.events_frame(table(held)), floor)
    seen = list(rows[:first])
    compared = 0
    start = first
    while start < len(rows):
        size = rng.randint(1, 90)
        new_rows, start = rows[start : start + size], start + size
        seen += new_rows
        added = [row for row in new_rows if row["event_time"] >= _at(floor)]
        held += added
        if added:
            frame = gold.events_frame(table(added))
            low, high = gold.context_span(frame)
            users = set(frame["user_id"])
            viewers = [r for r in held if r["user_id"] in users and _at(low) <= r["event_time"] < _at(high)]
            cells.add(frame, gold.events_frame(table(viewers)))
        batch = gold.events_frame(table(new_rows))
        got = cells.rows(batch)
        recount = gold.window_rows(batch, gold.events_frame(table(seen)))
        activity = recount["video_activity"]
        starts = gold.micros(activity["window_start"])
        held_activity = activity.filter(pa.array(cells.holds(starts)))
        by_type = recount["events_by_type"]
        held_types = by_type.filter(pa.array(cells.holds(gold.micros(by_type["window_start"]))))
        assert _rows(got["video_activity"]) == _rows(held_activity)
        assert _rows(got["events_by_type"]) == _rows(held_types)
        compared += got["video_activity"].num_rows
    assert compared > 100
    # Raising the floor keeps the windows still held exact.
    cells.forget(floor + 5 * gold.MINUTE_US)
    assert cells.activity
    assert all(start - gold.MINUTE_US >= floor + 5 * gold.MINUTE_US for _, start in cells.activity)


@pytest.mark.parametrize("seed", [8, 9])
def test_the_recent_state_keeps_its_cells_as_a_recount_would(seed: int) -> None:
    """`RecentState.add` marks a batch's own events among its viewers' held ones by position: its windows,
    batch after batch (copies and replays of held events among them), equal a recount of all events."""
    rows = random_events(seed, n=900)
    rng = random.Random(seed)
    for offset, row in enumerate(rows):
        row |= {"kafka_partition": offset % 3, "kafka_offset": offset}
    state = RecentState(timedelta(minutes=60), None, table(rows[:0]).append_column(
        "kafka_partition", pa.array([], pa.int32())).append_column("kafka_offset", pa.array([], pa.int64())),
        gold.SESSIONS_SCHEMA.empty_table())  # fmt: skip
    seen: list[dict] = []
    start, compared = 0, 0
    while start < len(rows):
        size = rng.randint(1, 120)
        batch = rows[start : start + size] + rng.sample(seen, min(len(seen), rng.randint(0, 5)))
        start += size
        state.add(pa.Table.from_pylist(batch, schema=state.events.schema))
        seen += [row for row in batch if row not in seen]
        frame = gold.events_frame(table(batch))
        got = state.cells.rows(frame)
        recount = gold.window_rows(frame, gold.events_frame(table(seen)))
        assert _rows(got["video_activity"]) == _rows(recount["video_activity"])
        assert _rows(got["events_by_type"]) == _rows(recount["events_by_type"])
        compared += got["video_activity"].num_rows
    assert compared > 50


def _at(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def test_repeated_strings_share_one_string_per_value() -> None:
    column = pa.chunked_array([["like", "join", "like"], ["like", None], []], pa.string())
    values = gold.repeated_strings(column)
    assert list(values) == ["like", "join", "like", "like", None]
    dense = gold.repeated_strings(pa.chunked_array([["like", "join"], ["like"]]))
    assert list(dense) == ["like", "join", "like"]
    assert dense.dtype == object
    assert dense[0] is dense[2]
    assert len(gold.repeated_strings(pa.chunked_array([], pa.string()))) == 0
