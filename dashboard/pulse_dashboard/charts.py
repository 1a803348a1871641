"""Altair charts of the dashboard, built from the frames `pulse_dashboard.metrics` produces."""

from __future__ import annotations

import altair as alt
import pandas as pd

from pulse_core.contract import EVENT_TYPES

# Labels are minutes, so ticks are at least a minute apart: a short range must not repeat "00:57 00:57".
_TIME = alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M", tickMinStep=60_000, labelOverlap=True))
_HEIGHT = 260


def events_by_type_chart(frame: pd.DataFrame) -> alt.Chart:
    """Events per minute over time, stacked by event type."""
    return (
        alt.Chart(frame, height=_HEIGHT)
        .mark_area()
        .encode(
            x=_TIME,
            y=alt.Y("per_minute:Q", stack="zero", title="events / min"),
            color=alt.Color("event:N", scale=alt.Scale(domain=list(EVENT_TYPES)), title="event"),
            order=alt.Order("event:N"),
            tooltip=[
                alt.Tooltip("time:T", format="%H:%M"),
                "event:N",
                alt.Tooltip("per_minute:Q", format=".1f"),
            ],
        )
    )


def viewers_chart(frame: pd.DataFrame) -> alt.Chart:
    """Concurrent (solid) and active (dashed) viewers per video over time."""
    return (
        alt.Chart(frame, height=_HEIGHT)
        .mark_line()
        .encode(
            x=_TIME,
            y=alt.Y("viewers:Q", title="viewers"),
            color=alt.Color("video_id:N", title="video"),
            strokeDash=alt.StrokeDash(
                "metric:N", scale=alt.Scale(domain=["concurrent", "active"]), title="viewers"
            ),
            tooltip=[
                alt.Tooltip("time:T", format="%H:%M"),
                "video_id:N",
                "metric:N",
                alt.Tooltip("viewers:Q", format=".0f"),
            ],
        )
    )


def messages_chart(frame: pd.DataFrame, peak: pd.Series | None) -> alt.TopLevelMixin:
    """Chat messages per minute, with the peak minute marked and labelled."""
    line = (
        alt.Chart(frame, height=_HEIGHT)
        .mark_line()
        .encode(
            x=_TIME,
            y=alt.Y("messages:Q", title="messages / min"),
            tooltip=[alt.Tooltip("time:T", format="%H:%M"), "messages:Q"],
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
