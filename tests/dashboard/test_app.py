"""AppTest smoke and behaviour tests of the dashboard page, on fixture Gold tables."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from testkit.gold_fixture import write_gold_fixture
from tests.dashboard.conftest import HOURS, NOW, SEED, VIDEOS, charts, metric_values

KPI_LABELS = [
    "Concurrent viewers now",
    "Active viewers (last min)",
    "Messages / min now",
    "Open sessions",
    "Peak messages / min",
    "Events / min",
    "Median session length",
]
TABS = ["Events by type", "Viewers", "Chat", "Sessions", "Top videos"]


def chart_frame(chart: object) -> pd.DataFrame:
    """The data a Vega-Lite chart element ships to the browser."""
    proto = chart.proto  # type: ignore[attr-defined]
    payload = proto.datasets[0].data.data if proto.datasets else proto.data.data
    return pa.ipc.open_stream(payload).read_all().to_pandas()


def newest_minute(activity: pd.DataFrame) -> pd.Timestamp:
    return activity["window_start"].max()


def test_renders_every_view_from_fixture_gold(gold_lake: object, run_app: Callable[[], AppTest]) -> None:
    app = run_app()
    kpis = metric_values(app)
    assert list(kpis) == KPI_LABELS
    assert all(value != "—" for value, _ in kpis.values()), kpis
    assert [tab.label for tab in app.tabs] == TABS
    specs = [chart.proto.spec for chart in charts(app)]
    assert len(specs) == 4
    assert '"stack": "zero"' in specs[0]
    assert '"area"' in specs[0]
    assert '"strokeDash"' in specs[1]
    assert '"layer"' in specs[2]
    assert '"text"' in specs[2]
    assert '"x2"' in specs[3]
    (top,) = app.dataframe
    assert len(top.value) == VIDEOS
    assert not app.error
    assert not app.warning, [w.value for w in app.warning]
    assert any("Newest Gold window" in caption.value for caption in app.caption)


def test_kpis_match_the_gold_rows(
    gold_lake: object, gold_tables: dict[str, pd.DataFrame], run_app: Callable[[], AppTest]
) -> None:
    app = run_app()
    activity = gold_tables["video_activity"]
    minute = newest_minute(activity)
    per_minute = activity.groupby("window_start").sum(numeric_only=True)
    concurrent = per_minute.loc[minute, "concurrent_viewers"]
    change = concurrent - per_minute.loc[minute - pd.Timedelta(minutes=1), "concurrent_viewers"]
    last_hour = per_minute[per_minute.index > minute - pd.Timedelta(hours=1)]
    kpis = metric_values(app)
    assert kpis["Concurrent viewers now"] == (f"{concurrent:,.0f}", f"{change:+,.0f}")
    assert kpis["Peak messages / min"][0] == f"{last_hour['message_count'].max():,.0f}"
    assert kpis["Messages / min now"][0] == f"{per_minute.loc[minute, 'message_count']:,.0f}"


def test_time_range_filter_changes_what_is_shown(
    gold_lake: object, gold_tables: dict[str, pd.DataFrame], run_app: Callable[[], AppTest]
) -> None:
    app = run_app()
    hour_points = chart_frame(charts(app)[2])
    app.sidebar.radio(key="range").set_value("Last 15 min").run()
    quarter_points = chart_frame(charts(app)[2])
    assert len(hour_points) == 60
    assert len(quarter_points) == 15
    per_minute = gold_tables["video_activity"].groupby("window_start")["message_count"].sum()
    assert metric_values(app)["Peak messages / min"][0] == f"{per_minute.tail(15).max():,.0f}"
    assert any("auto-refresh" in c.value and "Showing" in c.value for c in app.caption)


def test_custom_range_shows_only_that_span(
    gold_lake: object, gold_tables: dict[str, pd.DataFrame], run_app: Callable[[], AppTest]
) -> None:
    app = run_app()
    app.sidebar.radio(key="range").set_value("Custom").run()
    start = newest_minute(gold_tables["video_activity"]) - pd.Timedelta(minutes=90)
    end = start + pd.Timedelta(minutes=20)
    app.sidebar.get("date_time_input")[0].set_value(start.to_pydatetime()).run()
    app.sidebar.get("date_time_input")[1].set_value(end.to_pydatetime()).run()
    assert not app.exception
    messages = chart_frame(charts(app)[2])
    assert len(messages) == 20
    assert pd.to_datetime(messages["time"], utc=True).min() == start


def test_video_filter_narrows_kpis_charts_and_table(
    gold_lake: object, gold_tables: dict[str, pd.DataFrame], run_app: Callable[[], AppTest]
) -> None:
    app = run_app()
    video = "video_02"
    assert set(chart_frame(charts(app)[1])["video_id"]) == {f"video_{i:02d}" for i in range(1, VIDEOS + 1)}
    app.sidebar.multiselect(key="videos").set_value([video]).run()
    activity = gold_tables["video_activity"]
    mine = activity[activity["video_id"] == video].set_index("window_start")
    assert metric_values(app)["Concurrent viewers now"][0] == (
        f"{mine.loc[newest_minute(activity), 'concurrent_viewers']:,.0f}"
    )
    assert set(chart_frame(charts(app)[1])["video_id"]) == {video}
    assert app.dataframe[0].value["video"].tolist() == [video]


def test_auto_refresh_is_configurable_and_pausable(
    gold_lake: object, run_app: Callable[[], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_DASHBOARD_REFRESH_SECONDS", "3")
    app = run_app()
    assert app.sidebar.number_input(key="refresh_seconds").value == 3.0
    assert any("auto-refresh every 3s" in c.value for c in app.caption)
    app.sidebar.toggle(key="auto_refresh").set_value(False).run()
    assert any("auto-refresh paused" in c.value for c in app.caption)
    assert app.sidebar.number_input(key="refresh_seconds").disabled


def test_stale_data_shows_a_warning_with_the_age(
    dashboard_env: Path, run_app: Callable[[], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_DASHBOARD_STALE_AFTER_SECONDS", "120")
    ended = datetime.now(UTC) - timedelta(minutes=45)
    write_gold_fixture(str(dashboard_env), now=ended, hours=1, videos=2, seed=SEED)
    app = run_app()
    (warning,) = app.warning
    assert "Data is stale" in warning.value
    assert "more than 2 min" in warning.value
    age = int(re.search(r"ended (\d+) min ago", warning.value).group(1))  # type: ignore[union-attr]
    assert 44 <= age <= 46, warning.value


def test_missing_tables_show_the_documented_message(
    dashboard_env: Path, run_app: Callable[[], AppTest]
) -> None:
    app = run_app()
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 3
    for table in ("events_by_type", "user_sessions", "video_activity"):
        assert any(f"Table gold/{table} does not exist yet" in w for w in warnings), warnings
    assert all(value == "—" for value, _ in metric_values(app).values())
    assert not charts(app)
    assert sum("Not available" in info.value for info in app.info) == 5


def test_empty_tables_show_the_documented_message(
    dashboard_env: Path, run_app: Callable[[], AppTest]
) -> None:
    write_gold_fixture(
        str(dashboard_env),
        now=NOW,
        hours=1,
        videos=2,
        empty=("events_by_type", "user_sessions", "video_activity"),
    )
    app = run_app()
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 3
    assert all("exists but has no rows yet" in w for w in warnings), warnings
    assert not charts(app)


def test_one_missing_table_leaves_the_other_views(
    dashboard_env: Path, run_app: Callable[[], AppTest]
) -> None:
    write_gold_fixture(
        str(dashboard_env), now=NOW, hours=HOURS, videos=VIDEOS, tables=("events_by_type", "video_activity")
    )
    app = run_app()
    (warning,) = app.warning
    assert "gold/user_sessions does not exist yet" in warning.value
    assert len(charts(app)) == 3
    kpis = metric_values(app)
    assert kpis["Open sessions"][0] == "—"
    assert kpis["Median session length"][0] == "—"
    assert kpis["Concurrent viewers now"][0] != "—"


def test_invalid_settings_show_an_error_not_a_trace(
    dashboard_env: Path, run_app: Callable[[], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_DASHBOARD_REFRESH_SECONDS", "often")
    app = run_app()
    (error,) = app.error
    assert "dashboard_refresh_seconds" in error.value


def test_remote_lake_without_an_account_says_what_to_set(
    dashboard_env: Path, run_app: Callable[[], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_LAKE", "az://gold/lake")
    app = run_app()
    (error,) = app.error
    assert "PULSE_STORAGE_ACCOUNT" in error.value
