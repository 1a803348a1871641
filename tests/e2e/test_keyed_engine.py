"""The keyed engine (`PULSE_ENGINE=keyed`, `pulse.jobs.keyed`): Gold from the JVM operator's changes in
Spark tasks equals the reference exactly, on late, out-of-order data with duplicates, poison input and
same-instant ties in several micro-batches; a replayed batch changes nothing; and the events it cannot
hold (later than its horizon) go through Silver and rebuild its state, still exactly."""

from __future__ import annotations

import logging
from dataclasses import astuple
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pulse.jobs import keyed
from pulse.jobs.runner import PipelineOptions, run_pipeline
from pulse_core.settings import load_settings
from tests.e2e.conftest import Broker
from tests.e2e.lake_checks import assert_every_table_exact
from tests.e2e.late_stream import (
    Sent,
    assert_lake_exact,
    gold_snapshot,
    produce_hard_stream,
    produce_late_stream,
)

pytestmark = pytest.mark.e2e

REBUILT = "rebuilding the operator's state from the lake"


def _total(*streams: Sent) -> Sent:
    return Sent(*(sum(getattr(s, name) for s in streams) for name in ("delivered", "valid", "poison")))


def _forget_last_batch(lake: Path) -> str:
    """Delete the pipeline checkpoint's newest commit entry, so the next start replays that batch."""
    commits = sorted(
        (lake / "_checkpoints" / "pipeline" / "commits").glob("[0-9]*"), key=lambda p: int(p.name)
    )
    commits[-1].unlink()
    commits[-1].with_name(f".{commits[-1].name}.crc").unlink(missing_ok=True)
    return commits[-1].name


@pytest.mark.parametrize("horizon_minutes", [15, 1], ids=["in-horizon", "past-horizon"])
def test_keyed_engine_matches_reference_and_replays_idempotently(
    spark,
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    horizon_minutes: int,
) -> None:
    # At 15 minutes every event (up to 10 minutes late) is the operator's; at 1, the many later ones go
    # through Silver, and each such batch rebuilds the operator's state from the lake.
    monkeypatch.setenv("PULSE_ENGINE", "keyed")
    monkeypatch.setenv("PULSE_RECENT_MINUTES", str(horizon_minutes))
    caplog.set_level(logging.INFO, logger="pulse.pipeline")
    settings = load_settings()
    lake = broker.home / "lake"
    sent = produce_hard_stream(settings, tmp_path, events=20000, seed=77)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=4000), settings)

    rebuilds = [r.message for r in caplog.records if REBUILT in r.message]
    if horizon_minutes == 15:
        # Only tie_g's copy of tie_d's event (`tie_events`), which the operator counted under tie_g.
        assert len(rebuilds) == 1, rebuilds
        assert "older than the operator counts: 0;" in rebuilds[0], rebuilds
        assert "copies of another viewer's event: 1" in rebuilds[0], rebuilds
    else:
        assert rebuilds, "events past the horizon should have rebuilt the operator's state"
        assert any("older than the operator counts" in m for m in rebuilds), rebuilds
    assert (lake / "_checkpoints" / "pipeline" / "state").is_dir(), "the operator's state is checkpointed"
    for table in ("events_by_type", "user_sessions", "video_activity"):
        operations = [h.get("operation") for h in DeltaTable(str(lake / "gold" / table)).history()]
        assert operations.count("WRITE") >= 3, (table, operations)
    assert_lake_exact(lake, sent)

    before = gold_snapshot(lake)
    replayed = _forget_last_batch(lake)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=4000), settings)
    assert (lake / "_checkpoints" / "pipeline" / "commits" / replayed).exists() or any(
        REBUILT in r.message for r in caplog.records[len(rebuilds) :]
    ), "the batch was replayed"
    assert gold_snapshot(lake) == before
    assert_lake_exact(lake, sent)


def test_keyed_engine_with_sparks_commits_is_exact(
    spark, broker: Broker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With Spark's commits (`PULSE_GOLD_WRITER=spark`, a cloud lake without a delta-rs credential) the
    keyed engine appends Bronze from the checked records' Bronze columns and Silver and the quarantine
    from the driver's rows, and commits Gold by MERGE: every table exact, as with delta-rs."""
    lake = broker.home / "lake"
    caplog.set_level(logging.INFO, logger="pulse.pipeline")
    monkeypatch.setenv("PULSE_ENGINE", "keyed")
    monkeypatch.setenv("PULSE_GOLD_WRITER", "spark")
    sent = produce_late_stream(load_settings(), events=3000, seed=41)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=1500), load_settings())
    assert any(r.message == "appends: Spark" for r in caplog.records)
    operations = [h.get("operation") for h in DeltaTable(str(lake / "gold" / "video_activity")).history()]
    assert "MERGE" in operations, operations
    assert (lake / "_checkpoints" / "pipeline" / "state").is_dir()
    assert_every_table_exact(lake, *astuple(sent))


def test_switching_engines_moves_the_other_engines_checkpoint_aside_and_stays_exact(
    spark, broker: Broker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint written by one engine is moved aside by the other, which starts after what Bronze
    holds, as after a reset (a deploy that changes an environment's engine needs nothing more); every
    table stays exact."""
    lake = broker.home / "lake"
    caplog.set_level(logging.WARNING, logger="pulse.pipeline")
    monkeypatch.setenv("PULSE_ENGINE", "driver")
    first = produce_late_stream(load_settings(), events=4000, seed=5)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=2000), load_settings())

    monkeypatch.setenv("PULSE_ENGINE", "keyed")
    second = produce_late_stream(load_settings(), events=4000, seed=6)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=2000), load_settings())
    assert (lake / "_checkpoints" / "pipeline" / "state").is_dir()
    switched = [r.message for r in caplog.records if "this run asks for keyed" in r.message]
    assert switched, "the driver engine's checkpoint was moved aside"
    assert "PULSE_ENGINE=driver" in switched[0]
    assert len(list((lake / "_checkpoints" / "_switched").iterdir())) == 1
    assert_every_table_exact(lake, *astuple(_total(first, second)))

    monkeypatch.setenv("PULSE_ENGINE", "driver")
    third = produce_late_stream(load_settings(), events=4000, seed=7)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=2000), load_settings())
    assert not (lake / "_checkpoints" / "pipeline" / "state").exists()
    assert any("this run asks for driver" in r.message for r in caplog.records)
    assert_every_table_exact(lake, *astuple(_total(first, second, third)))


def _state_partitions(lake: Path) -> int:
    return sum(p.name.isdigit() for p in (lake / "_checkpoints" / "pipeline" / "state" / "0").iterdir())


def test_state_partitions_follow_the_setting_through_a_rebuild(
    spark,
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`PULSE_STATE_PARTITIONS` sets a new checkpoint's state partitions. A checkpoint that holds another
    count is moved aside and its state rebuilt from the lake in the count asked for; without the setting a
    checkpoint keeps its own. A checkpoint of another state layout is moved aside and rebuilt too. Every
    table stays exact throughout."""
    lake = broker.home / "lake"
    monkeypatch.setenv("PULSE_ENGINE", "keyed")
    monkeypatch.setenv("PULSE_STATE_PARTITIONS", "3")
    first = produce_late_stream(load_settings(), events=2000, seed=31)
    run_pipeline(PipelineOptions("all", once=True), load_settings())
    assert _state_partitions(lake) == 3
    session_partitions = spark.conf.get("spark.sql.shuffle.partitions")
    assert session_partitions != "3", "the session's own shuffle partitions are left as they were"

    monkeypatch.setenv("PULSE_STATE_PARTITIONS", "5")
    caplog.set_level(logging.WARNING, logger="pulse.pipeline")
    second = produce_late_stream(load_settings(), events=2000, seed=32)
    run_pipeline(PipelineOptions("all", once=True), load_settings())
    warnings = [r.message for r in caplog.records if "PULSE_STATE_PARTITIONS=5" in r.message]
    assert warnings, "a checkpoint in other partitions is reported"
    assert "held its state in 3 partitions" in warnings[0], warnings
    assert _state_partitions(lake) == 5
    assert len(list((lake / "_checkpoints" / "_repartitioned").iterdir())) == 1
    assert_every_table_exact(lake, *astuple(_total(first, second)))

    monkeypatch.delenv("PULSE_STATE_PARTITIONS")
    third = produce_late_stream(load_settings(), events=2000, seed=33)
    run_pipeline(PipelineOptions("all", once=True), load_settings())
    assert _state_partitions(lake) == 5, "without the setting a checkpoint keeps its partitions"
    assert len(list((lake / "_checkpoints" / "_repartitioned").iterdir())) == 1
    assert_every_table_exact(lake, *astuple(_total(first, second, third)))

    # A checkpoint of the operator's first layout (a string key over a second check of the records)
    # carries no layout file: it is moved aside, and the state rebuilt from the lake in today's layout.
    marker = lake / "_checkpoints" / "pipeline" / keyed.FORMAT_FILE
    assert marker.read_text() == keyed.FORMAT
    marker.unlink()
    fourth = produce_late_stream(load_settings(), events=2000, seed=34)
    run_pipeline(PipelineOptions("all", once=True), load_settings())
    reformatted = [r.message for r in caplog.records if "_reformatted" in r.message]
    assert reformatted, "a checkpoint in another layout is reported"
    assert f"in layout 1, and this version keeps it in layout {keyed.FORMAT}" in reformatted[0], reformatted
    assert len(list((lake / "_checkpoints" / "_reformatted").iterdir())) == 1
    assert marker.read_text() == keyed.FORMAT
    assert_every_table_exact(lake, *astuple(_total(first, second, third, fourth)))
