"""Altair charts of the dashboard, built from the frames `pulse_dashboard.metrics` produces."""

from __future__ import annotations

import altair as alt
import pandas as pd

from pulse_core.contract import EVENT_TYPES

_HEIGHT = 260
# Tick spacings in minutes: the smallest that keeps a chart to about `_MAX_TICKS` labels is used.
_TICK_STEPS_MIN = (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440)
_MAX_TICKS = 8
# How much lighter the minute that is still filling up is drawn.
IN_PROGRESS_OPACITY = 0.35


def tick_step_minutes(times: pd.Series) -> int:
    """Whole minutes between two time-axis ticks, so that a chart of these times gets a few labels."""
    if times.empty:
        return 1
    span = (pd.Timestamp(times.max()) - pd.Timestamp(times.min())) / pd.Timedelta(minutes=1)
    return next((step for step in _TICK_STEPS_MIN if span / step <= _MAX_TICKS), _TICK_STEPS_MIN[-1])


def time_axis(times: pd.Series) -> alt.X:
    """The x encoding of a time chart: ticks on whole minutes, each label once.

    Left to itself, Vega picks 30 s ticks on a few minutes of data, which label "13:48 13:48"
    (`tickMinStep` does not stop it on a time scale). So the ticks are given: every `tick_step_minutes`
    whole minutes of the range. A range longer than a day names the day too.
    """
    values: list[alt.DateTime] = []
    if not times.empty:
        first, last = pd.Timestamp(times.min()), pd.Timestamp(times.max())
        step = pd.Timedelta(minutes=tick_step_minutes(times))
        ticks = pd.date_range(first.ceil(step), last, freq=step) if first.ceil(step) <= last else [first]
        values = [_datetime(pd.Timestamp(tick)) for tick in ticks]
    longer_than_a_day = not times.empty and times.max() - times.min() > pd.Timedelta(days=1)
    axis = alt.Axis(format="%b %d %H:%M" if longer_than_a_day else "%H:%M", values=values, labelOverlap=True)
    return alt.X("time:T", title=None, axis=axis)


def _datetime(moment: pd.Timestamp) -> alt.DateTime:
    utc = moment.tz_convert("UTC") if moment.tzinfo else moment
    return alt.DateTime(
        year=utc.year, month=utc.month, date=utc.day, hours=utc.hour, minutes=utc.minute, utc=True
    )


def _minute_tooltip() -> alt.Tooltip:
    return alt.Tooltip("time:T", format="%H:%M")


def events_by_type_chart(frame: pd.DataFrame) -> alt.TopLevelMixin:
    """Events per minute over time, stacked by event type; the minute still filling up is drawn lighter.

    `frame` may carry `in_progress` (`metrics.events_over_time`): those points are drawn as a light band
    from the last complete point, so a minute that is only partly counted does not read as a drop.
    """
    encoding = {
        "x": time_axis(frame["time"]),
        "y": alt.Y("per_minute:Q", stack="zero", title="events / min"),
        "color": alt.Color("event:N", scale=alt.Scale(domain=list(EVENT_TYPES)), title="event"),
        "order": alt.Order("event:N"),
        "tooltip": [_minute_tooltip(), "event:N", alt.Tooltip("per_minute:Q", format=".1f")],
    }
    in_progress = frame["in_progress"] if "in_progress" in frame else pd.Series(False, index=frame.index)
    if not in_progress.any():
        return alt.Chart(frame, height=_HEIGHT).mark_area().encode(**encoding)
    complete = frame[~in_progress]
    last_complete = complete["time"].max() if not complete.empty else None
    filling = frame[in_progress | (frame["time"] == last_complete)]
    solid = alt.Chart(complete, height=_HEIGHT).mark_area().encode(**encoding)
    # The light band keeps out of the legend, which shows the full-strength colours.
    quiet = encoding | {"color": alt.Color("event:N", scale=alt.Scale(domain=list(EVENT_TYPES)), legend=None)}
    light = alt.Chart(filling, height=_HEIGHT).mark_area(opacity=IN_PROGRESS_OPACITY).encode(**quiet)
    return alt.layer(solid, light).resolve_legend(color="independent")


def viewers_chart(frame: pd.DataFrame) -> alt.Chart:
    """Concurrent (solid) and active (dashed) viewers per video over time."""
    return (
        alt.Chart(frame, height=_HEIGHT)
        .mark_line()
        .encode(
            x=time_axis(frame["time"]),
            y=alt.Y("viewers:Q", title="viewers"),
            color=alt.Color("video_id:N", title="video"),
            strokeDash=alt.StrokeDash(
                "metric:N", scale=alt.Scale(domain=["concurrent", "active"]), title="viewers"
            ),
            tooltip=[_minute_tooltip(), "video_id:N", "metric:N", alt.Tooltip("viewers:Q", format=".0f")],
        )
    )


def messages_chart(frame: pd.DataFrame, peak: pd.Series | None) -> alt.TopLevelMixin:
    """Chat messages per minute, with the peak minute marked and labelled."""
    line = (
        alt.Chart(frame, height=_HEIGHT)
        .mark_line()
        .encode(
            x=time_axis(frame["time"]),
            y=alt.Y("messages:Q", title="messages / min"),
            tooltip=[_minute_tooltip(), "messages:Q"],
        )
    )
    if peak is None:
        return line
    marker = pd.DataFrame(
        {"time": [peak["time"]], "messages": [peak["messages"]], "label": [f"peak {int(peak['messages'])}"]}
    )
    point = (
        alt.Chart(marker)
        .mark_point(size=120, filled=True, color="#d62728")
        .encode(x="time:T", y="messages:Q")
    )
    label = (
        alt.Chart(marker)
        .mark_text(dy=-12, color="#d62728", fontWeight="bold")
        .encode(x="time:T", y="messages:Q", text="label:N")
    )
    return alt.layer(line, point, label)


def session_lengths_chart(frame: pd.DataFrame) -> alt.Chart:
    """Distribution of session lengths: sessions per length bin, in minutes."""
    return (
        alt.Chart(frame, height=_HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X("from_min:Q", bin="binned", title="session length (min)"),
            x2="to_min:Q",
            y=alt.Y("sessions:Q", title="sessions"),
            tooltip=[
                alt.Tooltip("from_min:Q", format=".1f", title="from (min)"),
                alt.Tooltip("to_min:Q", format=".1f", title="to (min)"),
                "sessions:Q",
            ],
        )
    )
