"""KPI and chart-data definitions on small hand-made frames."""

from __future__ import annotations

import pandas as pd
import pytest

from pulse_dashboard.metrics import (
    Period,
    bucket_for,
    compute_kpis,
    events_over_time,
    messages_over_time,
    open_sessions_at,
    session_lengths,
    top_videos,
    viewers_over_time,
)

T0 = pd.Timestamp("2025-07-13 12:00", tz="UTC")
M = pd.Timedelta(minutes=1)


def activity_rows(rows: list[tuple[int, str, int, int, int]]) -> pd.DataFrame:
    """(minute, video, concurrent, active, messages) -> video_activity rows."""
    return pd.DataFrame(
        [
            {
                "window_start": T0 + minute * M,
                "window_end": T0 + (minute + 1) * M,
                "video_id": video,
                "active_viewers": active,
                "concurrent_viewers": concurrent,
                "message_count": messages,
                "like_count": 1,
                "event_count": 10,
            }
            for minute, video, concurrent, active, messages in rows
        ]
    )


def sessions_rows(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """(start second, end second) -> user_sessions rows."""
    return pd.DataFrame(
        [
            {
                "user_id": f"u{i}",
                "video_id": "v1",
                "session_start": T0 + pd.Timedelta(seconds=start),
                "session_end": T0 + pd.Timedelta(seconds=end),
                "duration_seconds": float(end - start),
                "event_count": 2,
                "message_count": 0,
            }
            for i, (start, end) in enumerate(rows)
        ]
    )


EVENTS = pd.DataFrame(
    [
        {
            "window_start": T0 + m * M,
            "window_end": T0 + (m + 1) * M,
            "video_id": "v1",
            "event": e,
            "event_count": n,
        }
        for m, e, n in [(0, "join", 4), (1, "join", 2), (2, "message", 6), (3, "like", 3), (3, "join", 1)]
    ]
)


def test_open_session_means_last_event_within_300s() -> None:
    sessions = sessions_rows([(0, 100), (0, 400), (500, 600), (800, 900)])
    assert open_sessions_at(sessions, T0 + pd.Timedelta(seconds=700)) == 2  # ends at 400 and 600
    assert open_sessions_at(sessions, T0 + pd.Timedelta(seconds=400)) == 2  # 100 is exactly 300 s old


def test_kpis_and_their_changes() -> None:
    activity = activity_rows(
        [(0, "v1", 5, 6, 1), (1, "v1", 7, 9, 4), (2, "v1", 10, 12, 2), (2, "v2", 3, 3, 5), (3, "v1", 8, 8, 0)]
    )
    sessions = sessions_rows([(0, 60), (30, 150), (100, 220)])
    period = Period(T0 + 2 * M, T0 + 4 * M)  # minutes 2 and 3; the previous range is minutes 0 and 1
    kpis = {k.label: (k.value, k.delta) for k in compute_kpis(activity, EVENTS, sessions, period)}
    assert kpis["Concurrent viewers now"] == (8, -5)
    assert kpis["Active viewers (last min)"] == (8, -7)
    assert kpis["Messages / min now"] == (0, -7)
    assert kpis["Peak messages / min"] == (7, 3)
    assert kpis["Events / min"] == (5, 2)
    assert kpis["Median session length"] == (120, 60)
    assert kpis["Open sessions"] == (3, 0)


def test_kpis_compare_complete_minutes_only() -> None:
    activity = activity_rows([(0, "v1", 5, 6, 1), (1, "v1", 7, 9, 4), (2, "v1", 1, 1, 0)])
    period = Period(T0, T0 + 3 * M)
    sessions = sessions_rows([(0, 60)])
    # Gold has seen events up to 2 min 30 s: minute 2 is still filling up.
    kpis = {
        k.label: (k.value, k.delta) for k in compute_kpis(activity, EVENTS, sessions, period, T0 + 2.5 * M)
    }
    assert kpis["Concurrent viewers now"] == (7, 2)
    assert kpis["Active viewers (last min)"] == (9, 3)
    naive = {k.label: (k.value, k.delta) for k in compute_kpis(activity, EVENTS, sessions, period)}
    assert naive["Active viewers (last min)"] == (1, -8), "the half-filled minute shows as a drop"


def test_kpis_without_data_have_no_value_and_no_change() -> None:
    empty = activity_rows([]).reindex(columns=activity_rows([(0, "v", 1, 1, 1)]).columns)
    kpis = compute_kpis(empty, EVENTS.iloc[0:0], sessions_rows([]), Period(T0, T0 + M))
    assert [(k.value, k.delta) for k in kpis][:3] == [(None, None)] * 3


@pytest.mark.parametrize(("hours", "minutes"), [(0.25, 1), (1, 1), (2, 2), (6, 5), (12, 10), (24, 15)])
def test_chart_bucket_grows_with_the_range(hours: float, minutes: int) -> None:
    assert bucket_for(pd.Timedelta(hours=hours)) == pd.Timedelta(minutes=minutes)


def test_chart_frames() -> None:
    activity = activity_rows([(0, "v1", 5, 6, 1), (1, "v1", 7, 9, 4), (1, "v2", 1, 1, 9), (5, "v1", 1, 1, 0)])
    period = Period(T0, T0 + 2 * M)
    stacked = events_over_time(EVENTS, period)
    assert stacked.set_index(["time", "event"])["per_minute"].to_dict() == {
        (T0, "join"): 4,
        (T0 + M, "join"): 2,
    }
    viewers = viewers_over_time(activity, period)
    assert set(viewers["metric"]) == {"concurrent", "active"}
    assert len(viewers) == 2 * 3
    frame, peak = messages_over_time(activity, period)
    assert frame["messages"].tolist() == [1, 13]
    assert (peak["time"], peak["messages"]) == (T0 + M, 13)
    top = top_videos(activity, period)
    assert top["video"].tolist() == ["v1", "v2"]
    assert top.iloc[0][["viewers now", "peak viewers", "messages"]].tolist() == [7, 7, 5]


def test_session_length_histogram_counts_sessions_that_ended_in_range() -> None:
    sessions = sessions_rows([(0, 60), (0, 120), (0, 600), (0, 3600)])
    hist = session_lengths(sessions, Period(T0, T0 + pd.Timedelta(seconds=700)), bins=10)
    assert hist["sessions"].sum() == 3
    assert hist["from_min"].iloc[0] == 0
    assert hist["to_min"].iloc[-1] == pytest.approx(10.0)


def test_the_now_kpis_say_they_show_the_last_complete_minute() -> None:
    activity = activity_rows([(0, "v1", 5, 6, 1), (1, "v1", 7, 9, 4), (2, "v1", 1, 1, 0)])
    period = Period(T0, T0 + 3 * M)
    # Gold has seen events up to 2 min 30 s: the figures are minute 1's, so the words must say so.
    kpis = {
        k.label: k for k in compute_kpis(activity, EVENTS, sessions_rows([(0, 60)]), period, T0 + 2.5 * M)
    }
    messages = kpis["Messages / min now"]
    assert messages.value == 4
    for label in ("Concurrent viewers now", "Active viewers (last min)", "Messages / min now"):
        assert "last complete minute" in kpis[label].help, kpis[label].help
        assert "current minute" not in kpis[label].help, kpis[label].help


def test_events_over_time_marks_the_minute_still_filling_up() -> None:
    period = Period(T0, T0 + 4 * M)
    stacked = events_over_time(EVENTS, period, complete_by=T0 + 3.5 * M)
    in_progress = stacked.groupby("time")["in_progress"].first().to_dict()
    assert in_progress == {T0: False, T0 + M: False, T0 + 2 * M: False, T0 + 3 * M: True}
    assert not events_over_time(EVENTS, period, complete_by=T0 + 4 * M)["in_progress"].any()
    assert not events_over_time(EVENTS, period)["in_progress"].any()
