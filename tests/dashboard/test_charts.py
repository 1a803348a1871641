"""The time axis of every time chart labels each minute once."""

from __future__ import annotations

import pandas as pd

from pulse_dashboard import charts


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


def test_minute_labels_never_repeat_on_a_short_range() -> None:
    times = pd.date_range("2026-11-28 00:57:00", periods=3, freq="20s", tz="UTC")
    frame = pd.DataFrame({"time": times, "event": "like", "per_minute": 1.0, "viewers": 3.0,
                          "series": "active", "messages": 2})  # fmt: skip
    specs = [
        charts.events_by_type_chart(frame).to_dict(),
        charts.viewers_chart(frame).to_dict(),
        charts.messages_chart(frame, None).to_dict(),
    ]
    axes = [axis for spec in specs for axis in _time_axes(spec)]
    assert len(axes) >= 3
    for axis in axes:
        assert axis["format"] == "%H:%M"
        assert axis["tickMinStep"] >= 60_000
