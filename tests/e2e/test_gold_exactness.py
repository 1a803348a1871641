"""Gold equals the reference exactly on late, out-of-order data processed in several micro-batches,
and replaying a batch changes nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pulse.jobs import backfill
from pulse.jobs.runner import PipelineOptions, run
from pulse.producer.run import ProduceOptions, produce
from pulse_core.settings import load_settings
from tests.e2e.conftest import Broker
from tests.gold_reference import differences, normalise_rows, reference_gold

pytestmark = pytest.mark.e2e

GOLD = ("events_by_type", "user_sessions", "video_activity")


def _rows(lake: Path, layer: str, table: str) -> list[dict]:
    return DeltaTable(str(lake / layer / table)).to_pyarrow_table().to_pylist()


def _gold_snapshot(lake: Path) -> dict[str, list[dict]]:
    return {
        table: sorted(normalise_rows(_rows(lake, "gold", table)), key=lambda r: tuple(map(str, r.values())))
        for table in GOLD
    }


def test_gold_matches_reference_under_late_data_and_replays_idempotently(
    spark, broker: Broker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A one-minute recent state: in-order events take the driver-side path, and the many events later
    # than a minute take the path through the Delta tables, so both are checked against the reference.
    monkeypatch.setenv("PULSE_RECENT_MINUTES", "1")
    caplog.set_level(logging.INFO, logger="pulse.pipeline")
    settings = load_settings()
    lake = broker.home / "lake"
    summary = produce(
        ProduceOptions(
            events=20000, rate=0, seed=77, late=0.15, max_late_s=600, duplicates=0.01, inject_bad=0.02
        ),
        settings.kafka_client_config(),
        settings.kafka_topic,
        progress=None,
        echo=lambda _: None,
    )
    assert summary.failed == 0
    run(PipelineOptions("all", once=True, max_offsets_per_trigger=4000), settings)

    below_floor = [r.message for r in caplog.records if "below the recent state's floor" in r.message]
    assert any("deduplicating" in m for m in below_floor), (
        "late events should have been deduplicated in Delta"
    )
    assert any("silver.events" in m for m in below_floor), "late events should have read Silver from Delta"
    gold_versions = DeltaTable(str(lake / "gold" / "video_activity")).history()
    merges = [h for h in gold_versions if h.get("operation") in ("MERGE", "WRITE")]  # Spark, delta-rs
    assert len(merges) >= 3, "gold should have run as several micro-batches"

    # Every table reads whole with delta-rs, poison input included (non-UTF-8 bytes stay in binary columns).
    bronze = _rows(lake, "bronze", "events_raw")
    assert len(bronze) == summary.delivered
    quarantine = _rows(lake, "silver", "quarantine")
    assert len(quarantine) == sum(summary.injected.values())
    raw = {(r["partition"], r["offset"]): r["value"] for r in bronze}
    assert all(raw[(q["kafka_partition"], q["kafka_offset"])] == q["raw_value"] for q in quarantine)
    silver = _rows(lake, "silver", "events")
    assert len(silver) == summary.valid
    assert len({r["event_id"] for r in silver}) == len(silver)
    reference = reference_gold(silver)
    for table in GOLD:
        assert differences(table, _rows(lake, "gold", table), reference[table]) == [], table

    before = _gold_snapshot(lake)
    commits = sorted(
        (lake / "_checkpoints" / "pipeline" / "commits").glob("[0-9]*"), key=lambda p: int(p.name)
    )
    commits[-1].unlink()  # forget that the last batch finished: the restart replays it
    commits[-1].with_name(f".{commits[-1].name}.crc").unlink(missing_ok=True)
    run(PipelineOptions("all", once=True, max_offsets_per_trigger=4000), settings)
    assert (lake / "_checkpoints" / "pipeline" / "commits" / commits[-1].name).exists(), (
        "the batch was replayed"
    )
    assert _gold_snapshot(lake) == before

    # A backfill rebuilds Silver, quarantine and Gold from Bronze with the same transforms: same result.
    result = backfill.run(spark, settings, chunk_rows=5000, echo=lambda _: None)
    assert (result.events, result.quarantined) == (summary.valid, len(quarantine))
    assert result.chunks >= 3
    assert len(_rows(lake, "silver", "events")) == summary.valid
    assert _gold_snapshot(lake) == before
