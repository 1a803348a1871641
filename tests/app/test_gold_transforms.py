"""Gold over whole tables in Spark tasks (`pulse.transforms.gold_tables`) on small frames: the edge cases
of windows, presence and sessions, checked two ways.

Each case has hand-computed expectations, and the Spark result must also equal the plain-Python
reference implementation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pulse.transforms import gold_tables
from pulse.transforms.gold_tables import events_by_type, sessionize, video_activity
from testkit.gold_reference import (
    differences,
    reference_events_by_type,
    reference_user_sessions,
    reference_video_activity,
)

T0 = datetime(2025, 7, 13, 12, 0, 0)
SCHEMA = "event_id string, event_time timestamp, event string, user_id string, video_id string"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _frame(spark, rows: list[tuple[float, str, str] | tuple[float, str, str, str]]):
    data = []
    for i, row in enumerate(rows):
        seconds, event, user = row[:3]
        video = row[3] if len(row) > 3 else "v1"
        data.append((f"e{i:04d}", at(seconds), event, user, video))
    return spark.createDataFrame(data, SCHEMA), [dict(zip(SCHEMA_COLS, d, strict=True)) for d in data]


SCHEMA_COLS = ("event_id", "event_time", "event", "user_id", "video_id")


def _sessions(spark, rows) -> list[dict]:
    frame, plain = _frame(spark, rows)
    got = [r.asDict() for r in sessionize(frame).collect()]
    assert differences("user_sessions", got, reference_user_sessions(plain)) == []
    return sorted(got, key=lambda r: (r["user_id"], r["session_start"]))


def _activity(spark, rows) -> dict[datetime, dict]:
    frame, plain = _frame(spark, rows)
    got = [r.asDict() for r in video_activity(frame).collect()]
    assert differences("video_activity", got, reference_video_activity(plain)) == []
    return {r["window_start"]: r for r in got}


def test_gap_of_exactly_300s_keeps_the_session_301s_splits_it(spark) -> None:
    rows = [(0, "join", "a"), (300, "heartbeat", "a"), (0, "join", "b"), (301, "heartbeat", "b")]
    sessions = _sessions(spark, rows)
    a = [s for s in sessions if s["user_id"] == "a"]
    b = [s for s in sessions if s["user_id"] == "b"]
    assert [(s["session_start"], s["session_end"], s["duration_seconds"]) for s in a] == [
        (at(0), at(300), 300.0)
    ]
    assert [(s["session_start"], s["session_end"]) for s in b] == [(at(0), at(0)), (at(301), at(301))]


def test_leave_ends_the_session_and_a_quick_rejoin_starts_a_new_one(spark) -> None:
    rows = [
        (0, "join", "a"),
        (20, "message", "a"),
        (40, "leave", "a"),
        (50, "join", "a"),
        (60, "message", "a"),
    ]
    sessions = _sessions(spark, rows)
    assert [
        (s["session_start"], s["session_end"], s["event_count"], s["message_count"]) for s in sessions
    ] == [
        (at(0), at(40), 3, 1),
        (at(50), at(60), 2, 1),
    ]


def test_out_of_order_input_is_sessionized_by_event_time(spark) -> None:
    rows = [(600, "heartbeat", "a"), (0, "join", "a"), (400, "heartbeat", "a"), (200, "heartbeat", "a")]
    sessions = _sessions(spark, rows)
    assert [(s["session_start"], s["session_end"], s["event_count"]) for s in sessions] == [
        (at(0), at(600), 4)
    ]


def test_leave_and_event_at_the_same_instant_leave_counts_last(spark) -> None:
    rows = [(0, "join", "a"), (30, "leave", "a"), (30, "heartbeat", "a"), (31, "join", "a")]
    sessions = _sessions(spark, rows)
    assert [(s["session_start"], s["session_end"], s["event_count"]) for s in sessions] == [
        (at(0), at(30), 3),
        (at(31), at(31), 1),
    ]


def test_heartbeat_at_exactly_t_minus_120s_is_present(spark) -> None:
    # Window [120 s, 180 s) ends at T = 180 s, so T - 120 s = 60 s: "edge" counts, "late" (59.999 s) does not.
    rows = [(60, "heartbeat", "edge"), (59.999, "heartbeat", "late"), (150, "join", "fresh")]
    activity = _activity(spark, rows)
    window = activity[at(120)]
    assert window["concurrent_viewers"] == 2  # edge and fresh
    assert (window["active_viewers"], window["event_count"]) == (1, 1)
    assert activity[at(0)]["concurrent_viewers"] == 1  # T = 60 s: only "late" had an event before it
    assert activity[at(60)]["concurrent_viewers"] == 2  # T = 120 s: late and edge


def test_presence_boundary_at_t_minus_120_exactly(spark) -> None:
    # T for window [60, 120) is 120 s; a heartbeat at exactly 0 s (= T - 120 s) counts, one at -0.001 s not.
    rows = [(0, "heartbeat", "on_edge"), (-0.001, "heartbeat", "just_out"), (90, "like", "other")]
    activity = _activity(spark, rows)
    assert activity[at(60)]["concurrent_viewers"] == 2  # on_edge and other


def test_leave_before_t_removes_the_viewer(spark) -> None:
    rows = [(0, "join", "a"), (10, "join", "b"), (50, "leave", "b"), (55, "message", "c")]
    window = _activity(spark, rows)[at(0)]
    assert window["active_viewers"] == 3
    assert window["concurrent_viewers"] == 2  # a and c; b left before T = 60 s
    assert (window["message_count"], window["like_count"], window["event_count"]) == (1, 0, 4)


def test_a_viewer_who_vanishes_times_out_after_120s(spark) -> None:
    rows = [
        (5, "join", "ghost"),
        (61, "heartbeat", "anchor"),
        (121, "heartbeat", "anchor"),
        (181, "heartbeat", "anchor"),
    ]
    activity = _activity(spark, rows)
    assert activity[at(0)]["concurrent_viewers"] == 1  # ghost at T = 60
    assert activity[at(60)]["concurrent_viewers"] == 2  # T = 120: ghost (5 s) still within 120 s
    assert activity[at(120)]["concurrent_viewers"] == 1  # T = 180: ghost's last event is 175 s old
    assert activity[at(180)]["concurrent_viewers"] == 1


def test_windows_start_on_the_minute_and_an_event_at_00_opens_the_next(spark) -> None:
    rows = [(59.999, "like", "a"), (60, "like", "a"), (120, "share", "b", "v2")]
    frame, plain = _frame(spark, rows)
    got = [r.asDict() for r in events_by_type(frame).collect()]
    assert differences("events_by_type", got, reference_events_by_type(plain)) == []
    assert sorted(
        (r["window_start"], r["window_end"], r["video_id"], r["event"], r["event_count"]) for r in got
    ) == [
        (at(0), at(60), "v1", "like", 1),
        (at(60), at(120), "v1", "like", 1),
        (at(120), at(180), "v2", "share", 1),
    ]


def test_window_without_events_has_no_row(spark) -> None:
    activity = _activity(spark, [(10, "join", "a"), (200, "heartbeat", "a")])
    assert sorted(activity) == [at(0), at(180)]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_audiences_match_the_reference(spark, seed: int) -> None:
    import random

    rng = random.Random(seed)
    kinds = ["join", "leave", "heartbeat", "message", "like", "share"]
    rows = [
        (rng.uniform(0, 1200), rng.choice(kinds), f"u{rng.randrange(12)}", f"v{rng.randrange(3)}")
        for _ in range(400)
    ]
    frame, plain = _frame(spark, rows)
    assert differences("events_by_type", [r.asDict() for r in events_by_type(frame).collect()],
                       reference_events_by_type(plain)) == []  # fmt: skip
    assert differences("user_sessions", [r.asDict() for r in sessionize(frame).collect()],
                       reference_user_sessions(plain)) == []  # fmt: skip
    activity = video_activity(frame)
    assert (
        differences(
            "video_activity", [r.asDict() for r in activity.collect()], reference_video_activity(plain)
        )
        == []
    )


def test_presence_reaches_across_the_task_groups_event_time_is_cut_into(spark) -> None:
    # Windows are computed per (video, 10-minute chunk) of event time (`gold_tables.CHUNK_MINUTES`). A
    # viewer whose last event is in a chunk's last minute is still present at the next chunk's first
    # window end: 12:09:30 >= 12:11:00 - 120 s.
    assert T0.minute % gold_tables.CHUNK_MINUTES == 0
    rows = [(9 * 60 + 30, "heartbeat", "before"), (10 * 60 + 10, "join", "after")]
    activity = _activity(spark, rows)
    assert activity[at(600)]["concurrent_viewers"] == 2
    assert activity[at(600)]["active_viewers"] == 1
    assert activity[at(540)]["concurrent_viewers"] == 1
