"""A `--once` run's second half (`benchmarks.scaleout.second_half`): the batches after the one that brings the
run past half its events, and the Spark JVM's CPU over the same span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.jvm_threads import GC, JIT, OTHER, TASKS
from benchmarks.scaleout import machine_ceiling, second_half
from pulse.progress_log import BATCH, CAUGHT_UP

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def batch(rows: int, committed_s: float) -> dict[str, Any]:
    return {
        "kind": BATCH,
        "stage": "all",
        "rows_in": rows,
        "committed_at": (T0 + timedelta(seconds=committed_s)).isoformat(),
    }


def cpu(jit: float, tasks: float) -> dict[str, float]:
    return {JIT: jit, TASKS: tasks, GC: 0.5, OTHER: 1.0}


def test_the_second_half_starts_at_the_commit_that_passes_half_the_events() -> None:
    # 6 batches of 200k: the third commit (at 30 s) brings the run to 600k, half of 1.2M; three more follow.
    records = [batch(200_000, s) for s in (10, 20, 30, 40, 50, 60)] + [
        {"kind": CAUGHT_UP, "stage": "all", "seconds": 61}
    ]
    at = T0.timestamp()
    timeline = [(at + 5, cpu(5, 1)), (at + 29.9, cpu(20, 6)), (at + 45, cpu(22, 9)), (at + 60, cpu(23, 12))]
    half = second_half(list(reversed(records)), timeline)  # any order: sorted by commit
    assert half["second_half_events"] == 600_000
    assert half["second_half_events_per_s"] == 20_000  # 600k over 30 s
    assert half["second_half_jvm_threads_s"] == {JIT: 3.0, TASKS: 6.0, GC: 0.0, OTHER: 0.0}
    assert half["second_half_task_cpu_us_per_event"] == 10.0


def test_uneven_batches_count_the_events_not_the_batches() -> None:
    # 100k + 500k + 100k + 100k: the second commit already passes half of 800k.
    records = [batch(100_000, 5), batch(500_000, 25), batch(100_000, 30), batch(100_000, 35)]
    half = second_half(records, [(T0.timestamp(), cpu(1, 1))])
    assert half["second_half_events"] == 200_000
    assert half["second_half_events_per_s"] == 20_000


def test_one_batch_has_no_second_half() -> None:
    assert second_half([batch(300_000, 20)], [(T0.timestamp(), cpu(1, 1))]) == {}
    assert second_half([], []) == {}


def test_the_machine_ceiling_is_its_cores_over_a_one_slot_runs_busy_cores() -> None:
    # A one-slot run keeping 1.65 of 2 cores busy leaves room for 1.21x at most; the median decides.
    assert machine_ceiling([1.63, 1.65, 1.70], cores=2) == 1.21
    # A one-slot run that keeps only its one task slot busy leaves room for the second slot's whole core.
    assert machine_ceiling([1.0], cores=2) == 2.0
    assert machine_ceiling([], cores=2) is None
