"""The progress record every Gold commit carries: written by the pipeline, read by any Delta reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pulse_core.progress import parse_progress, progress_from_history, progress_metadata

NEWEST = datetime(2026, 11, 28, 12, 30, 41, 250000, tzinfo=UTC)


def test_metadata_round_trips() -> None:
    committed = NEWEST + timedelta(seconds=3)
    progress = parse_progress(progress_metadata("pipeline-abc", 7, NEWEST), committed)
    assert progress is not None
    assert (progress.newest_event_time, progress.committed_at, progress.batch_id) == (NEWEST, committed, 7)
    assert progress.lag_seconds(NEWEST + timedelta(seconds=5)) == 5.0


def test_commits_without_a_record_are_skipped() -> None:
    history = [
        {"timestamp": 1_800_000_000_000, "operation": "OPTIMIZE"},
        {"timestamp": 1_799_999_999_000, "userMetadata": "not json"},
        {"timestamp": 1_799_999_998_000, "userMetadata": progress_metadata("r", 3, NEWEST)},
        {"timestamp": 1_799_999_997_000, "userMetadata": progress_metadata("r", 2, NEWEST)},
    ]
    progress = progress_from_history(history)
    assert progress is not None
    assert progress.batch_id == 3
    assert progress.committed_at == datetime.fromtimestamp(1_799_999_998, UTC)


def test_no_record_at_all_is_none() -> None:
    assert progress_from_history([{"timestamp": 1, "userMetadata": None}]) is None
    assert parse_progress(progress_metadata("r", 1, None), NEWEST) is None
