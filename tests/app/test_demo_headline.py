"""The demo's status line: Gold's newest complete minute, its lag, and only numbers this run committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import CommitProperties, write_deltalake

from pulse.devstack.demo import gold_headline
from pulse_core.progress import progress_metadata
from pulse_core.settings import PulseSettings
from testkit.gold_fixture import GOLD_SCHEMAS


def _commit_minute(settings: PulseSettings, minute: datetime, viewers: int) -> None:
    row = {
        "window_start": minute,
        "window_end": minute + timedelta(minutes=1),
        "video_id": "v1",
        "active_viewers": viewers,
        "concurrent_viewers": viewers,
        "message_count": 2,
        "like_count": 1,
        "event_count": 10,
    }
    table = pa.Table.from_pylist([row], schema=GOLD_SCHEMAS["video_activity"])
    metadata = progress_metadata("run", 1, minute + timedelta(seconds=30))
    write_deltalake(
        settings.table_path("gold", "video_activity"),
        table,
        mode="append",
        commit_properties=CommitProperties(custom_metadata={"userMetadata": metadata}),
    )


def test_headline_waits_for_this_runs_numbers(tmp_path: Path) -> None:
    settings = PulseSettings(home=tmp_path)
    assert gold_headline(settings) is None  # no table yet
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    _commit_minute(settings, now - timedelta(minutes=1), 40)
    _commit_minute(settings, now, 7)
    line = gold_headline(settings)
    assert line is not None
    # The newest minute is still filling up: the headline shows the complete one before it.
    assert f"gold @ {now - timedelta(minutes=1):%H:%M} UTC: 1 videos, 40 concurrent viewers" in line
    assert "s behind" in line
    # A demo started after these commits does not take them for its own numbers.
    assert gold_headline(settings, since=datetime.now(UTC) + timedelta(seconds=1)) is None
    assert gold_headline(settings, since=now - timedelta(hours=1)) == line
