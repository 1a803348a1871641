"""The keyed engine's driver side (`pulse.jobs.keyed`): the state it rebuilds the operator from, the instant
it counts from, and how it refuses the other engine's checkpoint."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from pulse.jobs import keyed
from pulse.jobs.recent import EVENT_COLUMNS, RecentState
from pulse.transforms import gold
from pulse_core.settings import PulseSettings

T0 = datetime(2026, 3, 1, 23, 40, tzinfo=UTC)  # the stream crosses midnight
MINUTE = keyed.MINUTE_US
KINDS = ("join", "heartbeat", "message", "like", "leave")


def _history(seed: int, viewers: int = 6, events: int = 400) -> pa.Table:
    """Silver events of a few viewers over 40 minutes: bursts, silences longer than the session gap,
    leaves, and events at the same instant."""
    rng = random.Random(seed)
    rows = []
    for i in range(events):
        at = T0 + timedelta(seconds=rng.choice([rng.uniform(0, 2400), rng.randrange(0, 2400, 60)]))
        rows.append(
            {
                "event_id": f"e{seed}-{i:04d}",
                "event_time": at,
                "event": rng.choices(KINDS, weights=(1, 6, 3, 2, 1))[0],
                "user_id": f"u{rng.randrange(viewers)}",
                "video_id": "v1",
                "kafka_partition": 0,
                "kafka_offset": i,
            }
        )
    table = pa.Table.from_pylist(rows)
    return table.select(list(EVENT_COLUMNS)).cast(
        pa.schema(
            [
                ("event_id", pa.string()),
                ("event_time", pa.timestamp("us", tz="UTC")),
                ("event", pa.string()),
                ("user_id", pa.string()),
                ("video_id", pa.string()),
                ("kafka_partition", pa.int32()),
                ("kafka_offset", pa.int64()),
            ]
        )
    )


def _sessions(events: pd.DataFrame) -> pd.DataFrame:
    return gold.sessionize(gold.as_segments(events))


@pytest.mark.parametrize("seed", range(40))
def test_initial_state_chains_into_the_sessions_gold_holds(seed: int) -> None:
    """The held events from the floor on, and the summary segments of what came before, chain (as the
    operator chains them) into exactly the Gold sessions a later event could still extend or merge."""
    silver = _history(seed)
    everything = gold.events_frame(silver)
    newest = int(everything["t"].max())
    floor = keyed.window_of(newest) - 15 * MINUTE
    sessions = _sessions(everything)
    state_floor = floor - keyed.GAP_US
    held = silver.filter(pa.compute.greater_equal(silver["event_time"], gold.timestamps([state_floor])[0]))
    gold_rows = gold.sessions_table(sessions[sessions["end"] >= state_floor - keyed.GAP_US])
    state = RecentState(timedelta(minutes=15), None, held, gold_rows)

    initial = keyed.initial_state(state, floor).to_pandas()

    events = initial[initial["kind"] == "event"]
    assert (events["t"] >= floor).all()
    assert len(events) == int((everything["t"] >= floor).sum())
    segments = initial[initial["kind"] == "segment"]
    assert (segments["end"] < floor).all(), "a segment is what came before the floor"
    parts = pd.concat(
        [
            gold.as_segments(
                everything[everything["event_id"].isin(events["event_id"])].reset_index(drop=True)
            ),
            segments[["user_id", "video_id", "start", "end", "events", "messages", "leave"]].assign(
                tie_leave=0, tie_id=""
            ),
        ],
        ignore_index=True,
    )
    chained = gold.sessionize(parts)
    expected = sessions[sessions["end"] >= floor - keyed.GAP_US]
    columns = ["user_id", "video_id", "start", "end", "events", "messages", "leave"]
    order = ["user_id", "video_id", "start"]
    assert chained[columns].sort_values(order).reset_index(drop=True).astype({"leave": bool}).to_dict(
        "records"
    ) == expected[columns].sort_values(order).reset_index(drop=True).astype({"leave": bool}).to_dict(
        "records"
    )


def test_initial_state_of_an_empty_lake_is_empty() -> None:
    empty = _history(0).slice(0, 0)
    state = RecentState(
        timedelta(minutes=15), None, empty, gold.sessions_table(_sessions(gold.events_frame(empty)))
    )
    assert keyed.initial_state(state, 0).num_rows == 0


def test_counted_from_is_the_watermarks_window_and_not_before_a_rebuilt_floor() -> None:
    assert keyed.counted_from(10 * MINUTE + 5, None) == 10 * MINUTE
    assert keyed.counted_from(10 * MINUTE, 12 * MINUTE) == 13 * MINUTE
    assert keyed.counted_from(20 * MINUTE + 1, 12 * MINUTE) == 20 * MINUTE


def test_the_horizon_is_whole_minutes_of_recent_minutes() -> None:
    assert keyed.horizon_us(PulseSettings(recent_minutes=7)) == 7 * MINUTE


def test_without_a_jdk_the_driver_engine_starts_and_the_keyed_engine_says_what_to_install(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulse import engine
    from pulse.spark import _engine_jar

    monkeypatch.setenv("PATH", str(tmp_path))  # no javac, no jar
    assert _engine_jar(PulseSettings(home=tmp_path, jars=tmp_path / "jars")) is None
    with pytest.raises(engine.EngineUnavailableError, match="JDK 17"):
        _engine_jar(PulseSettings(home=tmp_path, jars=tmp_path / "jars", engine="keyed"))


@pytest.mark.parametrize("records_first", [True, False])
def test_split_rows_parts_records_from_changes_in_either_order(records_first: bool) -> None:
    # The union puts the records first, and the split then copies nothing; any other order splits as well.
    records = [{keyed.RAW: True, "event_id": f"e{i}", "reason": None} for i in range(4)]
    changes = [
        {keyed.RAW: False, **{keyed.CHANGE_PREFIX + name: None for name in keyed.CHANGE_COLUMNS}}
        | {keyed.CHANGE_PREFIX + keyed.KIND: "type", keyed.CHANGE_PREFIX + "events": n}
        for n in (1, 2)
    ]
    rows = records + changes if records_first else [changes[0], *records[:2], changes[1], *records[2:]]
    schema = pa.schema(
        [(keyed.RAW, pa.bool_()), ("event_id", pa.string()), ("reason", pa.string())]
        + [
            (keyed.CHANGE_PREFIX + name, pa.int64() if name in keyed.ACTIVITY_OF_CHANGE else pa.string())
            for name in keyed.CHANGE_COLUMNS
        ]
    )
    table = pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows], schema)
    checked, frame = keyed.split_rows(table)
    assert checked.column_names == ["event_id", "reason"]
    assert checked["event_id"].to_pylist() == ["e0", "e1", "e2", "e3"]
    assert list(frame.columns) == list(keyed.CHANGE_COLUMNS)
    assert frame["events"].tolist() == [1, 2]
    assert (frame[keyed.KIND] == "type").all()
