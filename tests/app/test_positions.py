"""Where a job without a checkpoint starts (`pulse.jobs.positions`), read from a lake's history."""

from __future__ import annotations

import json

import pytest

from pulse import io
from pulse.jobs import positions
from pulse_core.progress import batch_marker

ALL_BATCH = batch_marker("pipeline-0b1c", 7)
REFINE_BATCH = batch_marker("refine-9f2e", 3)


def test_a_fresh_query_starts_after_what_bronze_holds_in_every_partition_it_holds() -> None:
    offsets = json.loads(positions.kafka_starting_offsets("events", 4, {0: 41, 2: 9}))
    assert offsets == {"events": {"0": 42, "1": positions.EARLIEST, "2": 10, "3": positions.EARLIEST}}


@pytest.mark.parametrize(
    ("partitions", "high_water"),
    [(None, {0: 5}), (2, {3: 5})],
    ids=["partition count unknown", "bronze holds a partition the topic no longer lists"],
)
def test_without_a_partition_count_it_starts_at_the_earliest_offsets(
    partitions: int | None, high_water: dict[int, int]
) -> None:
    assert positions.kafka_starting_offsets("events", partitions, high_water) == "earliest"


def test_an_empty_bronze_starts_at_the_earliest_offsets() -> None:
    assert positions.kafka_starting_offsets("events", 3, {}) == "earliest"


def _history(monkeypatch: pytest.MonkeyPatch, commits: list[io.Commit]) -> None:
    monkeypatch.setattr(positions, "_history", lambda spark, path: commits)


def test_bronze_has_unrefined_rows_when_the_bronze_job_appended_after_alls_newest_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _history(monkeypatch, [
        io.Commit(4, "OPTIMIZE", None),
        io.Commit(3, positions.STREAMING_APPEND, None),
        io.Commit(2, "WRITE", ALL_BATCH),
        io.Commit(0, "CREATE TABLE", None),
    ])  # fmt: skip
    assert positions.bronze_has_unrefined_rows(None, "bronze", refine_checkpointed=False)
    assert positions.refine_starting_version(None, "bronze") == 2


def test_bronze_is_refined_when_alls_commit_is_the_newest_append(monkeypatch: pytest.MonkeyPatch) -> None:
    _history(monkeypatch, [
        io.Commit(5, "WRITE", batch_marker(positions.REFINED_MARK_RUN, -1)),
        io.Commit(4, positions.STREAMING_APPEND, None),
        io.Commit(0, "CREATE TABLE", None),
    ])  # fmt: skip
    assert not positions.bronze_has_unrefined_rows(None, "bronze", refine_checkpointed=False)
    assert positions.bronze_has_unrefined_rows(None, "bronze", refine_checkpointed=True)


def test_a_lake_only_the_split_jobs_wrote_is_refined_from_its_first_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _history(
        monkeypatch, [io.Commit(1, positions.STREAMING_APPEND, None), io.Commit(0, "CREATE TABLE", None)]
    )
    assert positions.refine_starting_version(None, "bronze") is None
    assert not positions.is_all_commit(io.Commit(2, "WRITE", REFINE_BATCH))
