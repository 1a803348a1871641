"""The dashboard's numbers: pure functions from Gold frames to KPIs and chart data.

Definitions (docs/dashboard.md repeats them for the people who read the dashboard):

* The **current minute** of the "now" KPIs is the last complete 1-minute window in the selected range
  (the newest one, when Gold's progress is unknown). "Now" KPIs compare it with the minute before; range
  KPIs compare the selected range with the equally long range before it.
* A session is **open** at time T when it started by T and its last event is within 300 s of T,
  so the next event would still extend it. T is the newest session end in the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from pulse_core.semantics import SESSION_GAP_S, WINDOW_S

MINUTE = pd.Timedelta(seconds=WINDOW_S)
SESSION_GAP = pd.Timedelta(seconds=SESSION_GAP_S)


@dataclass(frozen=True)
class Period:
    """The selected time range `[start, end)` in UTC."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def length(self) -> pd.Timedelta:
        """How long the range is."""
        return self.end - self.start

    @property
    def previous(self) -> Period:
        """The equally long range just before this one."""
        return Period(self.start - self.length, self.start)

    @classmethod
    def ending_at(cls, end: datetime, length: timedelta) -> Period:
        """The range of `length` that ends at `end`."""
        stop = pd.Timestamp(end)
        return cls(stop - pd.Timedelta(length), stop)


@dataclass(frozen=True)
class Kpi:
    """One headline number and its change.

    Attributes:
        label: What it is.
        value: The number now, or `None` when there is no data.
        delta: Change against the previous minute or period, `None` when there is nothing to compare.
        unit: `count`, `per_min` or `seconds` (how to format it).
        help: The definition, shown as a tooltip.
        scope: `now` (the current minute) or `range` (the whole selected range).
    """

    label: str
    value: float | None
    delta: float | None
    unit: str
    help: str
    scope: str = "now"


def _within(frame: pd.DataFrame, column: str, period: Period) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[(frame[column] >= period.start) & (frame[column] < period.end)]


def per_minute(frame: pd.DataFrame, column: str) -> pd.Series:
    """`column` summed over videos for each window start, in time order."""
    if frame.empty:
        return pd.Series(dtype="float64")
    return frame.groupby("window_start")[column].sum().sort_index()


def current_minute(
    activity: pd.DataFrame, period: Period, complete_by: pd.Timestamp | None = None
) -> pd.Timestamp | None:
    """The newest window start in the range, or `None` when the range has no window.

    With `complete_by` (the newest event time Gold reflects), only complete minutes count: a minute
    whose end is later is still filling up, and comparing it with a full minute would show a false drop.
    """
    inside = _within(activity, "window_start", period)
    if complete_by is not None:
        inside = inside[inside["window_start"] + MINUTE <= complete_by]
    return None if inside.empty else inside["window_start"].max()


def _at(series: pd.Series, minute: pd.Timestamp) -> float | None:
    return float(series.loc[minute]) if minute in series.index else None


def _change(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def open_sessions_at(sessions: pd.DataFrame, moment: pd.Timestamp) -> int:
    """Sessions started by `moment` whose last event is at most `SESSION_GAP` before it."""
    if sessions.empty:
        return 0
    started = sessions["session_start"] <= moment
    recent = sessions["session_end"] >= moment - SESSION_GAP
    return int((started & recent).sum())


def median_session_seconds(sessions: pd.DataFrame, period: Period) -> float | None:
    """Median `duration_seconds` of the sessions that ended in the range."""
    ended = _within(sessions, "session_end", period)
    return None if ended.empty else float(ended["duration_seconds"].median())


def compute_kpis(
    activity: pd.DataFrame,
    events: pd.DataFrame,
    sessions: pd.DataFrame,
    period: Period,
    complete_by: pd.Timestamp | None = None,
) -> list[Kpi]:
    """The headline numbers of the range, each with its change.

    Args:
        activity: `gold.video_activity` rows covering `period.previous` and `period`.
        events: `gold.events_by_type` rows covering the same span.
        sessions: `gold.user_sessions` rows overlapping the same span.
        period: The selected range.
        complete_by: The newest event time Gold reflects; the "now" KPIs then use the newest complete
            minute and compare it with the one before.

    Returns:
        Concurrent viewers, active viewers, messages/min now, peak messages/min, events/min,
        open sessions and median session length, in that order; `scope` says which describe now.
    """
    minute = current_minute(activity, period, complete_by)
    before = minute - MINUTE if minute is not None else None
    # The "now" figures are those of `minute`: the last complete one when Gold says how far it has got.
    which = "the last complete minute" if complete_by is not None else "the newest minute in the range"
    concurrent = per_minute(activity, "concurrent_viewers")
    active = per_minute(activity, "active_viewers")
    messages = per_minute(activity, "message_count")
    kpis: list[Kpi] = []
    for label, series, help_text in (
        ("Concurrent viewers now", concurrent, f"Viewers present at the end of {which}."),
        ("Active viewers (last min)", active, f"Viewers with any event in {which}."),
        ("Messages / min now", messages, f"Chat messages in {which}."),
    ):
        now = _at(series, minute) if minute is not None else None
        prior = _at(series, before) if before is not None else None
        kpis.append(
            Kpi(label, now, _change(now, prior), "count", help_text + " Change: vs. the minute before.")
        )

    in_range = _within(messages.rename_axis("t").reset_index(), "t", period)
    in_previous = _within(messages.rename_axis("t").reset_index(), "t", period.previous)
    peak = float(in_range["message_count"].max()) if not in_range.empty else None
    peak_before = float(in_previous["message_count"].max()) if not in_previous.empty else None
    kpis.append(
        Kpi(
            "Peak messages / min",
            peak,
            _change(peak, peak_before),
            "count",
            "Busiest minute of chat in the range. Change: vs. the peak of the previous range.",
            "range",
        )
    )

    event_minutes = per_minute(events, "event_count").rename_axis("t").reset_index()
    rate = _within(event_minutes, "t", period)["event_count"].mean() if not event_minutes.empty else None
    rate_before = (
        _within(event_minutes, "t", period.previous)["event_count"].mean()
        if not event_minutes.empty
        else None
    )
    rate = None if rate is None or pd.isna(rate) else float(rate)
    rate_before = None if rate_before is None or pd.isna(rate_before) else float(rate_before)
    kpis.append(
        Kpi(
            "Events / min",
            rate,
            _change(rate, rate_before),
            "per_min",
            "All events per minute, averaged over the minutes of the range that have events. "
            "Change: vs. the previous range.",
            "range",
        )
    )

    ended = sessions[sessions["session_end"] < period.end] if not sessions.empty else sessions
    reference = ended["session_end"].max() if not ended.empty else None
    if reference is not None and reference >= period.start:
        open_now: float | None = float(open_sessions_at(ended, reference))
        open_before: float | None = float(open_sessions_at(ended, reference - MINUTE))
    else:
        open_now = open_before = None
    kpis.append(
        Kpi(
            "Open sessions",
            open_now,
            _change(open_now, open_before),
            "count",
            f"Sessions whose last event is within {SESSION_GAP_S} s of the newest Gold time. "
            "Change: vs. a minute earlier.",
        )
    )
    median = median_session_seconds(sessions, period)
    median_before = median_session_seconds(sessions, period.previous)
    kpis.append(
        Kpi(
            "Median session length",
            median,
            _change(median, median_before),
            "seconds",
            "Median length of the sessions that ended in the range. Change: vs. the previous range.",
            "range",
        )
    )
    return kpis


def bucket_for(length: pd.Timedelta) -> pd.Timedelta:
    """Chart resolution: 1-minute points up to an hour, coarser buckets beyond, ~150-300 points."""
    for limit, bucket in (
        (pd.Timedelta(hours=1), 1),
        (pd.Timedelta(hours=3), 2),
        (pd.Timedelta(hours=6), 5),
        (pd.Timedelta(hours=12), 10),
    ):
        if length <= limit:
            return pd.Timedelta(minutes=bucket)
    return pd.Timedelta(minutes=15)


def events_over_time(
    events: pd.DataFrame, period: Period, complete_by: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Events per minute by type, averaged per chart bucket.

    Args:
        events: `gold.events_by_type` rows.
        period: The selected range.
        complete_by: The newest event time Gold reflects: a bucket holding a minute that ends later is
            still filling up.

    Returns:
        Columns `time`, `event`, `per_minute`, and `in_progress` (the bucket is still filling up).
    """
    columns = ["time", "event", "per_minute", "in_progress"]
    inside = _within(events, "window_start", period)
    if inside.empty:
        return pd.DataFrame(columns=columns)
    frame = inside.assign(time=inside["window_start"].dt.floor(bucket_for(period.length)))
    summed = frame.groupby(["time", "event"], as_index=False)["event_count"].sum()
    # Divide by the minutes the bucket really holds: the first and last buckets of a range are partial.
    minutes = frame.groupby("time")["window_start"].nunique().rename("minutes")
    summed = summed.join(minutes, on="time")
    summed["per_minute"] = summed["event_count"] / summed["minutes"]
    if complete_by is None:
        summed["in_progress"] = False
    else:
        newest_end = (frame.groupby("time")["window_start"].max() + MINUTE).rename("newest_end")
        summed = summed.join(newest_end, on="time")
        summed["in_progress"] = summed["newest_end"] > complete_by
    return summed[columns]


def viewers_over_time(activity: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Concurrent and active viewers per video, averaged per chart bucket.

    Returns:
        Long format: `time`, `video_id`, `metric` (`concurrent` or `active`), `viewers`.
    """
    inside = _within(activity, "window_start", period)
    if inside.empty:
        return pd.DataFrame(columns=["time", "video_id", "metric", "viewers"])
    frame = inside.assign(time=inside["window_start"].dt.floor(bucket_for(period.length)))
    means = frame.groupby(["time", "video_id"], as_index=False)[
        ["concurrent_viewers", "active_viewers"]
    ].mean()
    long = means.melt(
        id_vars=["time", "video_id"],
        value_vars=["concurrent_viewers", "active_viewers"],
        var_name="metric",
        value_name="viewers",
    )
    long["metric"] = long["metric"].str.replace("_viewers", "", regex=False)
    return long


def messages_over_time(activity: pd.DataFrame, period: Period) -> tuple[pd.DataFrame, pd.Series | None]:
    """Chat messages per minute over the range, and the peak minute (`time`, `messages`) or `None`."""
    inside = _within(activity, "window_start", period)
    series = per_minute(inside, "message_count")
    frame = series.rename("messages").rename_axis("time").reset_index()
    if frame.empty:
        return frame, None
    return frame, frame.loc[frame["messages"].idxmax()]


def session_lengths(sessions: pd.DataFrame, period: Period, bins: int = 40) -> pd.DataFrame:
    """Histogram of the lengths (minutes) of the sessions that ended in the range.

    Binned here rather than in the browser, so a day of sessions ships as `bins` rows.

    Returns:
        Columns `from_min`, `to_min`, `sessions`; no rows when no session ended in the range.
    """
    ended = _within(sessions, "session_end", period)
    if ended.empty:
        return pd.DataFrame(columns=["from_min", "to_min", "sessions"])
    minutes = ended["duration_seconds"].to_numpy() / 60.0
    counts, edges = np.histogram(minutes, bins=bins, range=(0.0, max(float(minutes.max()), 1.0)))
    return pd.DataFrame({"from_min": edges[:-1], "to_min": edges[1:], "sessions": counts})


def top_videos(activity: pd.DataFrame, period: Period, limit: int = 20) -> pd.DataFrame:
    """The busiest videos of the range, by viewers now, then by events.

    Returns:
        One row per video: viewers now, peak concurrent viewers, peak active viewers, messages,
        likes and events in the range.
    """
    inside = _within(activity, "window_start", period)
    if inside.empty:
        return pd.DataFrame(
            columns=["video", "viewers now", "peak viewers", "peak active", "messages", "likes", "events"]
        )
    grouped = inside.groupby("video_id")
    newest = inside[inside["window_start"] == inside["window_start"].max()].set_index("video_id")
    now = newest["concurrent_viewers"].reindex(grouped.size().index, fill_value=0)
    table = pd.DataFrame(
        {
            "viewers now": now,
            "peak viewers": grouped["concurrent_viewers"].max(),
            "peak active": grouped["active_viewers"].max(),
            "messages": grouped["message_count"].sum(),
            "likes": grouped["like_count"].sum(),
            "events": grouped["event_count"].sum(),
        }
    )
    table = table.sort_values(["viewers now", "events"], ascending=False).head(limit)
    return table.rename_axis("video").reset_index()
