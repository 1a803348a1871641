"""Gold equals the reference exactly on late, out-of-order data with duplicates, poison input and
same-instant ties processed in several micro-batches, and replaying a batch changes nothing: with the
writer the Databricks jobs run (`infra.config`: delta-rs, which `auto` also picks for this machine's local
lake), and with Spark's commits (`PULSE_GOLD_WRITER=spark`, for a cloud lake without a credential)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from deltalake import DeltaTable

from infra.config import DATABRICKS_GOLD_WRITER
from pulse.jobs import backfill
from pulse.jobs.runner import PipelineOptions, run_pipeline
from pulse_core.settings import load_settings
from tests.e2e.conftest import Broker
from tests.e2e.lake_checks import rows
from tests.e2e.late_stream import assert_lake_exact, gold_snapshot, produce_hard_stream

pytestmark = pytest.mark.e2e

# PULSE_GOLD_WRITER → the operation its Gold commits record: delta-rs replaces ranges, Spark MERGEs.
WRITERS = {DATABRICKS_GOLD_WRITER: "WRITE", "spark": "MERGE"}


@pytest.mark.parametrize(
    "writer", list(WRITERS), ids=lambda w: "databricks-job" if w == DATABRICKS_GOLD_WRITER else w
)
def test_gold_matches_reference_under_late_data_and_replays_idempotently(
    spark,
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    writer: str,
) -> None:
    # A one-minute recent state: in-order events take the driver-side path, and the many events later
    # than a minute take the path through the Delta tables, so both are checked against the reference.
    monkeypatch.setenv("PULSE_RECENT_MINUTES", "1")
    monkeypatch.setenv("PULSE_GOLD_WRITER", writer)
    caplog.set_level(logging.INFO, logger="pulse.pipeline")
    settings = load_settings()
    lake = broker.home / "lake"
    sent = produce_hard_stream(settings, tmp_path, events=20000, seed=77)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=4000), settings)

    below_floor = [r.message for r in caplog.records if "below the recent state's floor" in r.message]
    assert any("deduplicating" in m for m in below_floor), (
        "late events should have been deduplicated in Delta"
    )
    assert any("silver.events" in m for m in below_floor), "late events should have read Silver from Delta"
    for table in ("events_by_type", "user_sessions", "video_activity"):
        operations = [h.get("operation") for h in DeltaTable(str(lake / "gold" / table)).history()]
        # Several micro-batches, every one committed by the writer asked for.
        assert operations.count(WRITERS[writer]) >= 3, (table, operations)
        assert set(operations) <= {WRITERS[writer], "CREATE TABLE"}, (table, operations)
    assert_lake_exact(lake, sent)

    before = gold_snapshot(lake)
    commits = sorted(
        (lake / "_checkpoints" / "pipeline" / "commits").glob("[0-9]*"), key=lambda p: int(p.name)
    )
    commits[-1].unlink()  # forget that the last batch finished: the restart replays it
    commits[-1].with_name(f".{commits[-1].name}.crc").unlink(missing_ok=True)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=4000), settings)
    assert (lake / "_checkpoints" / "pipeline" / "commits" / commits[-1].name).exists(), (
        "the batch was replayed"
    )
    assert gold_snapshot(lake) == before

    # A backfill rebuilds Silver, quarantine and Gold from Bronze with the same transforms: same result.
    result = backfill.rebuild_from_bronze(spark, settings, chunk_rows=5000, echo=lambda _: None)
    assert (result.events, result.quarantined) == (sent.valid, sent.poison)
    assert result.chunks >= 3
    assert len(rows(lake, "silver", "events")) == sent.valid
    assert gold_snapshot(lake) == before
