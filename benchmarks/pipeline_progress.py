"""What a benchmarked pipeline did, batch by batch: from its progress log, or from a baseline's log lines.

The code under test writes a progress log (`pulse pipeline --progress-log`, `pulse.progress_log`): one JSON
record per micro-batch and one per caught-up `--once` run. A baseline commit may predate it, so its human log
lines are parsed into the same records (`baseline_records`); nothing else here reads log lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from benchmarks.stats import summary_stats
from pulse.progress_log import BATCH, CAUGHT_UP


def batch_stats(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage: how many batches, the rows in, and the summaries of batch seconds and Spark jobs."""
    stages: dict[str, dict[str, list[float]]] = {}
    for record in records:
        if record["kind"] != BATCH:
            continue
        stage = stages.setdefault(record["stage"], {"seconds": [], "rows": [], "jobs": []})
        stage["seconds"].append(float(record["seconds"]))
        stage["rows"].append(float(record["rows_in"]))
        if record.get("spark_jobs") is not None:
            stage["jobs"].append(float(record["spark_jobs"]))
    return {
        name: {
            "batches": len(data["seconds"]),
            "rows_in_total": int(sum(data["rows"])),
            "batch_seconds": summary_stats(data["seconds"]),
            "spark_jobs_per_batch": summary_stats(data["jobs"]) if data["jobs"] else None,
        }
        for name, data in stages.items()
    }


def caught_up(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per job: the seconds its `--once` run took to catch up (Spark session start excluded)."""
    return {r["stage"]: float(r["seconds"]) for r in records if r["kind"] == CAUGHT_UP}


def committed_within(records: Iterable[dict[str, Any]], began: float, ended: float) -> list[dict[str, Any]]:
    """The batch records committed inside [began, ended] (epoch seconds)."""
    return [
        r
        for r in records
        if r["kind"] == BATCH and began <= datetime.fromisoformat(r["committed_at"]).timestamp() <= ended
    ]


# A baseline's human log lines: `<HH:MM:SS> pipeline batch N: R rows in … (S s), J spark jobs…` per batch and
# `<job>: caught up in S s` at the end of a `--once` run.
BASELINE_BATCH_LINE = re.compile(
    r"^(\d\d:\d\d:\d\d) (bronze|pipeline) batch (\d+): ([\d,]+) rows in .*?\(([\d.]+) s\)"
    r"(?:, (\d+) spark jobs)?.*$"
)
BASELINE_CAUGHT_UP = re.compile(r"(all|bronze|silver|gold): caught up in ([\d.]+) s")


def baseline_records(pipeline_log: str) -> list[dict[str, Any]]:
    """The progress records a baseline's log lines amount to (no event or commit times: lines lack them).

    Only for a baseline commit, whose code may not write a progress log; the code under test is read from
    its own log (`read_progress_log`).
    """
    records: list[dict[str, Any]] = []
    for line in pipeline_log.splitlines():
        batch = BASELINE_BATCH_LINE.match(line.strip())
        if batch:
            records.append(
                {
                    "kind": BATCH,
                    "stage": batch[2],
                    "batch_id": int(batch[3]),
                    "rows_in": int(batch[4].replace(",", "")),
                    "seconds": float(batch[5]),
                    "spark_jobs": int(batch[6]) if batch[6] else None,
                }
            )
        records.extend(
            {"kind": CAUGHT_UP, "stage": stage, "seconds": float(seconds)}
            for stage, seconds in BASELINE_CAUGHT_UP.findall(line)
        )
    return records
