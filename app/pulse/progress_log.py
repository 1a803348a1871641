"""The pipeline's progress log: one JSON object per line, for programs that follow a run (benchmarks, tests).

`pulse pipeline --progress-log PATH` (or `PULSE_PROGRESS_LOG`) appends one record per completed micro-batch
and one when a `--once` run has caught up. The human log lines stay as they are; this is the same news in a
form nobody has to parse with a regular expression.

A batch record (`"kind": "batch"`) carries `stage` (the query: `pipeline`, `refine` or `bronze`),
`batch_id`, `rows_in`, `seconds` and `committed_at` (when the batch's last write returned, UTC), plus
`spark_jobs` where the runtime counts them; a medallion batch adds what its log line says (`inserted`,
`quarantined`, `duplicates`, `phases`, …) and `newest_event_time`, the newest event time Gold reflects.
A caught-up record (`"kind": "caught_up"`) carries `stage` (the job), `seconds` and `at`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from pulse_core.clock import Clock, utc_now

BATCH = "batch"
CAUGHT_UP = "caught_up"


class ProgressLog:
    """Appends progress records to a JSON Lines file; does nothing when `path` is None.

    The file is opened once and each record is one write and a flush, so a reader sees whole lines as
    soon as a batch ends and a batch pays microseconds for it. Records come from the query's callback
    thread and from the driver loop, hence the lock.
    """

    def __init__(self, path: Path | None, clock: Clock = utc_now) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def batch(self, stage: str, values: Mapping[str, Any], spark_jobs: int | None = None) -> None:
        """Record one completed micro-batch of `stage`: `values` holds at least batch_id, rows_in, seconds."""
        committed_at = self.clock().isoformat()
        self._write(
            {"kind": BATCH, "stage": stage, **values, "spark_jobs": spark_jobs, "committed_at": committed_at}
        )

    def caught_up(self, stage: str, seconds: float) -> None:
        """Record that a `--once` run of job `stage` processed everything available, in `seconds`."""
        at = self.clock().isoformat()
        self._write({"kind": CAUGHT_UP, "stage": stage, "seconds": round(seconds, 3), "at": at})

    def _write(self, record: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            if self._file is not None:  # a batch may end while the run closes the log
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> ProgressLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_progress_log(path: Path) -> list[dict[str, Any]]:
    """The records in a progress log, oldest first; [] when there is no file yet.

    A last line without its newline is a record still being written (the file is read while the pipeline
    runs) and is left out.
    """
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]
