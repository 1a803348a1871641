"""The benchmarks read the pipeline's progress log for the code under test, and a baseline's log lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from benchmarks.pipeline_progress import baseline_records, batch_stats, caught_up, committed_within
from pulse.progress_log import ProgressLog, read_progress_log

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)

# What a baseline commit's `pulse pipeline all --once` printed, verbatim but for the numbers.
BASELINE_LOG = """\
12:00:01 lake: /tmp/lake; job: all; trigger: availableNow
12:00:09 pipeline batch 0: 2,000 rows in → 1,990 events, 5 quarantined, 5 duplicates [check 1.0] (4.5 s), \
7 spark jobs, newest event 3.0 s ago
12:00:12 pipeline batch 1: 1,000 rows in → 1,000 events, 0 quarantined, 0 duplicates [check 0.5] (2.5 s)
12:00:13 all: caught up in 12.0 s
"""


def test_a_baseline_log_and_a_progress_log_give_the_same_figures(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    with ProgressLog(path, clock=lambda: T0) as progress:
        progress.batch("pipeline", {"batch_id": 0, "rows_in": 2000, "seconds": 4.5}, spark_jobs=7)
        progress.batch("pipeline", {"batch_id": 1, "rows_in": 1000, "seconds": 2.5})
        progress.caught_up("all", 12.0)
    ours, theirs = read_progress_log(path), baseline_records(BASELINE_LOG)

    assert batch_stats(ours) == batch_stats(theirs)
    assert caught_up(ours) == caught_up(theirs) == {"all": 12.0}
    stats = batch_stats(ours)["pipeline"]
    assert (stats["batches"], stats["rows_in_total"]) == (2, 3000)
    assert (stats["batch_seconds"]["p50"], stats["batch_seconds"]["max"]) == (3.5, 4.5)
    assert stats["spark_jobs_per_batch"]["count"] == 1


def test_only_batches_committed_in_the_window_count(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    clock = iter(datetime.fromtimestamp(T0.timestamp() + s, UTC) for s in (0, 10, 20, 30))
    with ProgressLog(path, clock=lambda: next(clock)) as progress:
        for batch_id in range(3):
            progress.batch("pipeline", {"batch_id": batch_id, "rows_in": 10, "seconds": 1.0})
        progress.caught_up("all", 3.0)
    window = committed_within(read_progress_log(path), T0.timestamp() + 5, T0.timestamp() + 30)
    assert [r["batch_id"] for r in window] == [1, 2]
