"""How far Gold has got, as recorded in the `userMetadata` of every Gold commit.

The pipeline writes `{"pulse_run": …, "batch_id": …, "newest_event_time": …}` into each Gold commit, so
any Delta reader learns, from the log alone, the newest event time Gold reflects and when that was
committed. No Spark here: the dashboard reads it with delta-rs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Progress:
    """The newest event time Gold reflects, when that was committed, and by which micro-batch."""

    newest_event_time: datetime
    committed_at: datetime
    batch_id: int

    def lag_seconds(self, now: datetime) -> float:
        """How far behind the wall clock Gold is: now minus the newest event time it reflects."""
        return max(0.0, (now - self.newest_event_time).total_seconds())


def progress_metadata(run_id: str, batch_id: int, newest_event_time: datetime | None) -> str:
    """The `userMetadata` a Gold commit carries."""
    newest = newest_event_time.isoformat() if newest_event_time else None
    return json.dumps({"pulse_run": run_id, "batch_id": batch_id, "newest_event_time": newest})


def batch_marker(run_id: str, batch_id: int) -> str:
    """The `userMetadata` a Bronze, Silver or quarantine append carries: which run's batch it is."""
    return json.dumps({"pulse_run": run_id, "batch_id": batch_id})


def marked_batch(user_metadata: str | None, run_id: str) -> int | None:
    """The batch id a commit's `userMetadata` records for `run_id` (markers and progress records both)."""
    try:
        record = json.loads(user_metadata or "")
        return int(record["batch_id"]) if record.get("pulse_run") == run_id else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def parse_progress(user_metadata: str | None, committed_at: datetime) -> Progress | None:
    """The progress record in a commit's `userMetadata`, or None when it carries none."""
    try:
        record = json.loads(user_metadata or "")
        newest = datetime.fromisoformat(record["newest_event_time"])
        return Progress(newest.astimezone(UTC), committed_at.astimezone(UTC), int(record["batch_id"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def progress_from_history(history: list[dict]) -> Progress | None:
    """The newest progress record in a delta-rs `DeltaTable.history()` listing (newest commit first)."""
    return newest_progress(
        [
            (entry.get("userMetadata"), datetime.fromtimestamp(entry["timestamp"] / 1000, UTC))
            for entry in history
            if "timestamp" in entry
        ]
    )


def newest_progress(commits: list[tuple[str | None, datetime]]) -> Progress | None:
    """The first progress record among (userMetadata, commit time) pairs, newest commit first."""
    for metadata, committed_at in commits:
        progress = parse_progress(metadata, committed_at)
        if progress is not None:
            return progress
    return None
