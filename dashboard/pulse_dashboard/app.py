"""Pulse live dashboard: what a streamer or a moderator wants to see at a glance.

Run it with `streamlit run dashboard/pulse_dashboard/app.py` or `pulse dashboard`. The page stays thin:
reads go through `pulse_dashboard.data` (cached), numbers come from `pulse_dashboard.metrics`, charts
from `pulse_dashboard.charts`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (
    None,
    "",
):  # `streamlit run dashboard/pulse_dashboard/app.py` from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import altair as alt
import pandas as pd
import streamlit as st

from pulse_core.catalogue import GOLD
from pulse_dashboard import charts, data, metrics
from pulse_dashboard.credentials import CredentialError, redact

RANGES: dict[str, timedelta | None] = {
    "Last 15 min": timedelta(minutes=15),
    "Last 1 h": timedelta(hours=1),
    "Last 6 h": timedelta(hours=6),
    "Last 24 h": timedelta(hours=24),
    "Custom": None,
}
NO_DATA = "—"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return NO_DATA
    if unit == "seconds":
        minutes, seconds = divmod(round(abs(value)), 60)
        sign = "-" if value < 0 else ""
        return f"{sign}{minutes}m {seconds:02d}s" if minutes else f"{sign}{seconds}s"
    return f"{value:,.1f}" if unit == "per_min" and abs(value) < 100 else f"{value:,.0f}"


def _delta(value: float | None, unit: str) -> str | None:
    if value is None:
        return None
    text = _fmt(value, unit)
    return text if text.startswith("-") else f"+{text}"


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def show_freshness(statuses: dict[str, data.TableStatus], stale_after: float, now: datetime) -> None:
    """Newest Gold window and its age; a warning per missing, empty, stale or unreadable table."""
    activity = statuses["video_activity"]
    progress = activity.progress
    if progress is not None:
        # The real lag: how far behind the wall clock the newest event reflected in Gold is.
        lag = progress.lag_seconds(now if now.tzinfo else now.replace(tzinfo=UTC))
        st.caption(
            f"Data as of **{progress.newest_event_time:%H:%M:%S} UTC, {_age(lag)} behind** "
            f"(committed {progress.committed_at:%H:%M:%S} UTC) · the current minute is still filling up"
        )
    if activity.newest is not None:
        age = max(0.0, (pd.Timestamp(now) - activity.newest).total_seconds())
        start = activity.newest - metrics.MINUTE
        st.caption(
            f"Newest Gold window: **{start:%Y-%m-%d %H:%M} to {activity.newest:%H:%M} UTC** "
            f"({_age(age)} old) · checked {now:%H:%M:%S} UTC"
        )
        if age > stale_after:
            st.warning(
                f"Data is stale: the newest Gold window ended {_age(age)} ago "
                f"(at {activity.newest:%H:%M} UTC), more than {_age(stale_after)}. "
                "The pipeline may be stopped or falling behind.",
                icon="⏱️",
            )
    for status in statuses.values():
        if status.problem is None:
            continue
        if status.problem.kind in ("missing", "empty"):
            st.warning(status.problem.message, icon="⚠️")
        else:
            st.error(status.problem.message, icon="🔒")


def pick_period(choice: str, anchor: pd.Timestamp, custom: tuple[datetime, datetime]) -> metrics.Period:
    """The range the filters select: a preset ending at the newest Gold window, or the custom one."""
    length = RANGES[choice]
    if length is None:
        start, end = (pd.Timestamp(moment).tz_convert(UTC) for moment in custom)
        return metrics.Period(start, max(end, start + metrics.MINUTE))
    return metrics.Period.ending_at(anchor, length)


def empty_frame(table: str) -> pd.DataFrame:
    """A frame with a Gold table's columns and types, and no rows."""
    return GOLD[table].arrow_schema().empty_table().to_pandas()


def show_kpis(kpis: list[metrics.Kpi]) -> None:
    """The headline numbers: what is happening now on one row, the whole range on the next."""
    now = [kpi for kpi in kpis if kpi.scope == "now"]
    over_range = [kpi for kpi in kpis if kpi.scope == "range"]
    for row in (now, over_range):
        for column, kpi in zip(st.columns(4), row, strict=False):
            column.metric(
                kpi.label, _fmt(kpi.value, kpi.unit), _delta(kpi.delta, kpi.unit), help=kpi.help, border=True
            )


def _chart_or_note(chart_data: pd.DataFrame, problem: data.Problem | None, draw: alt.TopLevelMixin) -> None:
    if problem is not None:
        st.info(f"Not available: {problem.message}")
    elif chart_data.empty:
        st.info("No data in the selected range and videos.")
    else:
        st.altair_chart(draw, width="stretch")  # type: ignore[call-overload]


def show_views(
    activity: data.Loaded,
    events: data.Loaded,
    sessions: data.Loaded,
    period: metrics.Period,
    complete_by: pd.Timestamp | None = None,
) -> None:
    """KPIs, then one tab per view."""
    act, evt, ses = (
        loaded.frame if loaded.frame is not None else empty_frame(name)
        for loaded, name in (
            (activity, "video_activity"),
            (events, "events_by_type"),
            (sessions, "user_sessions"),
        )
    )
    show_kpis(metrics.compute_kpis(act, evt, ses, period, complete_by))

    activity_tab, viewers_tab, chat_tab, sessions_tab, top_tab = st.tabs(
        ["Events by type", "Viewers", "Chat", "Sessions", "Top videos"]
    )
    with activity_tab:
        frame = metrics.events_over_time(evt, period, complete_by)
        _chart_or_note(frame, events.problem, charts.events_by_type_chart(frame))
        if events.problem is None and frame["in_progress"].any() and complete_by is not None:
            st.caption(
                f"The lighter last stretch is still filling up: Gold has its events up to "
                f"{complete_by:%H:%M:%S} UTC."
            )
    with viewers_tab:
        frame = metrics.viewers_over_time(act, period)
        _chart_or_note(frame, activity.problem, charts.viewers_chart(frame))
    with chat_tab:
        frame, peak = metrics.messages_over_time(act, period)
        _chart_or_note(frame, activity.problem, charts.messages_chart(frame, peak))
    with sessions_tab:
        frame = metrics.session_lengths(ses, period)
        _chart_or_note(frame, sessions.problem, charts.session_lengths_chart(frame))
    with top_tab:
        table = metrics.top_videos(act, period)
        if activity.problem is not None:
            st.info(f"Not available: {activity.problem.message}")
        elif table.empty:
            st.info("No data in the selected range and videos.")
        else:
            st.dataframe(table, hide_index=True, width="stretch")


def main() -> None:
    """Render the page."""
    st.set_page_config(page_title="Pulse · live audience", page_icon="📈", layout="wide")
    st.title("Pulse · live audience")
    try:
        settings, dash = data.load_all_settings()
        gold = data.resolve_gold(settings, dash)
    except (CredentialError, ValueError) as exc:
        st.error(f"The dashboard cannot reach Gold: {redact(str(exc))}", icon="🔒")
        st.stop()

    now = datetime.now(UTC)
    statuses = data.load_status(gold.key, gold)
    newest = [status.newest for status in statuses.values() if status.newest is not None]
    anchor = statuses["video_activity"].newest or (max(newest) if newest else pd.Timestamp(now))

    with st.sidebar:
        st.header("Filters")
        choice = st.radio("Time range", list(RANGES), index=1, key="range")
        custom_default = (anchor - pd.Timedelta(hours=1)).to_pydatetime(), anchor.to_pydatetime()
        custom = custom_default
        if RANGES[choice] is None:
            custom = (
                st.datetime_input("From (UTC)", value=custom_default[0], key="custom_start"),
                st.datetime_input("To (UTC)", value=custom_default[1], key="custom_end"),
            )
            custom = tuple(  # type: ignore[assignment]
                moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in custom
            )
        options = data.load_videos(gold.key, (anchor - pd.Timedelta(hours=24)).to_pydatetime(), gold)
        chosen = st.multiselect("Videos", options, placeholder="All videos", key="videos")
        st.header("Refresh")
        auto = st.toggle("Auto-refresh", value=True, key="auto_refresh")
        every = st.number_input(
            "Every (seconds)",
            min_value=1.0,
            max_value=3600.0,
            value=float(dash.dashboard_refresh_seconds),
            step=1.0,
            key="refresh_seconds",
            disabled=not auto,
        )
        st.caption(f"Reads are cached for {data.CACHE_TTL_SECONDS:g} s.")

    videos = tuple(chosen) if chosen else None

    @st.fragment(run_every=timedelta(seconds=every) if auto else None)
    def live() -> None:
        moment = datetime.now(UTC)
        current = data.load_status(gold.key, gold)
        show_freshness(current, dash.dashboard_stale_after_seconds, moment)
        newest_window = current["video_activity"].newest or anchor
        period = pick_period(choice, newest_window, custom)
        span_start = period.previous.start.to_pydatetime()
        span_end = period.end.to_pydatetime()
        activity = data.load_table(gold.key, "video_activity", span_start, span_end, videos, gold)
        events = data.load_table(gold.key, "events_by_type", span_start, span_end, videos, gold)
        sessions = data.load_table(gold.key, "user_sessions", span_start, span_end, videos, gold)
        st.caption(
            f"Showing {period.start:%Y-%m-%d %H:%M} to {period.end:%H:%M} UTC · "
            f"{len(chosen) if chosen else 'all'} videos · "
            + ("auto-refresh every " + _fmt(every, "seconds") if auto else "auto-refresh paused")
        )
        progress = current["video_activity"].progress
        complete_by = pd.Timestamp(progress.newest_event_time) if progress else None
        show_views(activity, events, sessions, period, complete_by)

    live()


main()
