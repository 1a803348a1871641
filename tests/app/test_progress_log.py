"""The progress log: one JSON line per micro-batch and per caught-up run, for programs that follow a run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pulse.jobs.medallion import BatchResult
from pulse.progress_log import ProgressLog, read_progress_log

NOW = datetime(2026, 11, 28, 12, 30, 45, tzinfo=UTC)
NEWEST = datetime(2026, 11, 28, 12, 30, 41, 250000, tzinfo=UTC)


def _result(batch_id: int = 7) -> BatchResult:
    return BatchResult(
        batch_id=batch_id,
        rows_in=1200,
        inserted=1150,
        quarantined=30,
        duplicates=20,
        windows_touched=True,
        sessions_rebuilt_from_silver=False,
        newest_event_time=NEWEST,
        seconds=1.75,
        phases={"check": 0.4, "silver": 0.1, "compute": 0.3, "merge": 0.9},
    )


def test_a_batch_and_a_caught_up_run_read_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "progress.jsonl"
    with ProgressLog(path, clock=lambda: NOW) as progress:
        progress.batch("pipeline", _result().record(), spark_jobs=3)
        progress.caught_up("all", 12.5)

    batch, caught_up = read_progress_log(path)
    assert batch == {
        "kind": "batch",
        "stage": "pipeline",
        "batch_id": 7,
        "rows_in": 1200,
        "inserted": 1150,
        "quarantined": 30,
        "duplicates": 20,
        "windows_touched": True,
        "sessions_rebuilt_from_silver": False,
        "newest_event_time": NEWEST.isoformat(),
        "seconds": 1.75,
        "phases": {"check": 0.4, "silver": 0.1, "compute": 0.3, "merge": 0.9},
        "spark_jobs": 3,
        "committed_at": NOW.isoformat(),
    }
    assert caught_up == {"kind": "caught_up", "stage": "all", "seconds": 12.5, "at": NOW.isoformat()}


def test_each_record_is_on_disk_when_the_call_returns(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    progress = ProgressLog(path, clock=lambda: NOW)
    progress.batch("bronze", {"batch_id": 0, "rows_in": 5, "rows_out": 5, "seconds": 0.5})
    assert [r["batch_id"] for r in read_progress_log(path)] == [0]
    progress.close()
    progress.batch(
        "bronze", {"batch_id": 1, "rows_in": 5, "rows_out": 5, "seconds": 0.5}
    )  # after close: ignored
    assert len(read_progress_log(path)) == 1


def test_a_restarted_run_appends(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    for batch_id in (0, 1):
        with ProgressLog(path, clock=lambda: NOW) as progress:
            progress.batch("pipeline", _result(batch_id).record())
    assert [r["batch_id"] for r in read_progress_log(path)] == [0, 1]


def test_no_path_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ProgressLog(None) as progress:
        progress.batch("pipeline", _result().record(), spark_jobs=3)
        progress.caught_up("all", 1.0)
    assert not list(tmp_path.iterdir())


def test_records_from_several_threads_stay_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    with ProgressLog(path, clock=lambda: NOW) as progress:

        def write(stage: str) -> None:
            for batch_id in range(200):
                progress.batch(stage, {"batch_id": batch_id, "rows_in": 1, "seconds": 0.0, "pad": "x" * 500})

        threads = [threading.Thread(target=write, args=(f"s{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    records = read_progress_log(path)
    assert len(records) == 800
    assert sorted(r["stage"] for r in records if r["batch_id"] == 199) == ["s0", "s1", "s2", "s3"]


def test_a_line_still_being_written_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    path.write_text('{"kind": "caught_up", "stage": "all", "seconds": 1.0}\n{"kind": "ba')
    assert read_progress_log(path) == [{"kind": "caught_up", "stage": "all", "seconds": 1.0}]
    assert read_progress_log(tmp_path / "absent.jsonl") == []
