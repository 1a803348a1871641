"""The charts tell the truth about time: each tick labelled once, the minute still filling up drawn apart."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from pulse_dashboard import charts

T0 = pd.Timestamp("2026-11-28 13:47:00", tz="UTC")


def _time_axes(spec: object) -> list[dict]:
    found = []
    if isinstance(spec, dict):
        encoding = spec.get("encoding", {})
        x = encoding.get("x", {}) if isinstance(encoding, dict) else {}
        if isinstance(x, dict) and x.get("type") == "temporal":
            found.append(x.get("axis", {}))
        for value in spec.values():
            found += _time_axes(value)
    elif isinstance(spec, list):
        for value in spec:
            found += _time_axes(value)
    return found


def _frame(times: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"time": times, "event": "like", "per_minute": 1.0, "viewers": 3.0,
                         "video_id": "video_1", "metric": "active", "messages": 2})  # fmt: skip


def _labels(axis: dict) -> list[str]:
    """The labels Vega draws for a time axis whose tick values are given (Vega-Lite DateTimes, UTC)."""
    ticks = [
        pd.Timestamp(
            year=v["year"], month=v["month"], day=v["date"], hour=v["hours"], minute=v["minutes"], tz="UTC"
        )
        for v in axis["values"]
    ]
    assert all(value.get("utc") for value in axis["values"])
    steps = {later - earlier for earlier, later in itertools.pairwise(ticks)}
    assert all(step % pd.Timedelta(minutes=1) == pd.Timedelta(0) for step in steps), steps
    return [tick.strftime(axis["format"]) for tick in ticks]


@pytest.mark.parametrize(
    ("span", "freq"),
    [("3min", "1min"), ("150s", "30s"), ("1h", "1min"), ("6h", "5min"), ("24h", "15min"), ("3D", "15min")],
)
def test_every_time_axis_labels_each_tick_once(span: str, freq: str) -> None:
    """Seen at 13:50 in `make demo`: "13:48 13:48 13:49 13:49 13:50" under the Viewers chart."""
    times = pd.date_range(T0, T0 + pd.Timedelta(span), freq=freq)
    frame = _frame(times)
    specs = {
        "events": charts.events_by_type_chart(frame).to_dict(),
        "viewers": charts.viewers_chart(frame).to_dict(),
        "chat": charts.messages_chart(frame.assign(time=times), None).to_dict(),
    }
    for name, spec in specs.items():
        axes = _time_axes(spec)
        assert axes, name
        for axis in axes:
            assert axis.get("values"), f"{name}: Vega picks sub-minute ticks, which repeat minute labels"
            labels = _labels(axis)
            assert len(labels) == len(set(labels)), (name, labels)
            assert 1 <= len(labels) <= 10, (name, labels)


def _datasets(spec: dict) -> dict[str, list[dict]]:
    return spec.get("datasets", {})


def _layer_rows(spec: dict, layer: dict) -> list[dict]:
    return _datasets(spec)[layer["data"]["name"]]


def test_the_minute_still_filling_up_is_drawn_lighter_in_events_by_type() -> None:
    """Seen at 12:11:41 in `make demo`: ~6,300 events at 12:10, then ~2,200 at 12:11, drawn as a drop."""
    times = [T0 + pd.Timedelta(minutes=m) for m in range(4)]
    frame = pd.DataFrame(
        {
            "time": [t for t in times for _ in range(2)],
            "event": ["join", "message"] * 4,
            "per_minute": [3000.0, 3300.0] * 3 + [1000.0, 1200.0],
            "in_progress": [False] * 6 + [True] * 2,
        }
    )
    spec = charts.events_by_type_chart(frame).to_dict()
    assert "layer" in spec, "the in-progress minute needs its own mark"
    solid, light = spec["layer"]
    solid_times = {row["time"] for row in _layer_rows(spec, solid)}
    light_times = {row["time"] for row in _layer_rows(spec, light)}
    last = pd.Timestamp(times[-1]).isoformat()
    assert not any(pd.Timestamp(t) == times[-1] for t in solid_times), (
        "the full-strength area stops before it"
    )
    assert any(pd.Timestamp(t) == times[-1] for t in light_times), last
    assert any(pd.Timestamp(t) == times[-2] for t in light_times), (
        "the light band starts at the last full minute"
    )
    assert light["mark"]["opacity"] < 1
    assert solid["mark"].get("opacity", 1) == 1
    for layer in (solid, light):
        assert layer["encoding"]["y"]["stack"] == "zero"


def test_a_chart_without_an_in_progress_minute_is_one_area() -> None:
    frame = _frame(pd.date_range(T0, periods=3, freq="1min")).assign(in_progress=False)
    spec = charts.events_by_type_chart(frame).to_dict()
    assert spec["mark"]["type"] == "area"
