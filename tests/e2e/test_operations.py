"""What operators do never corrupts a table: a checkpoint reset, a change of job mode, a second run on
the same lake, and a run killed while it holds the lake (docs/pipeline.md, "Resets and job modes" and
"One writer per lake").

Each stream has late events (up to 10 minutes), resent duplicates and poison input; after every step the
lake is checked whole: Bronze one row per Kafka record, the quarantine one per malformed record, Silver
one per event_id, and Gold equal to the independent oracle.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pulse.jobs import reset
from pulse.jobs.lease import DeltaLeaseStore, LeaseHeldError, WriterLease, holder_of
from pulse.jobs.runner import PipelineOptions, run_pipeline
from pulse.producer.run import ProduceOptions, produce
from pulse.spark import get_spark
from pulse_core.settings import PulseSettings, load_settings
from tests.e2e.conftest import Broker, run_pulse, start_live_pipeline, wait_for_log_line
from tests.e2e.lake_checks import assert_every_table_exact

pytestmark = pytest.mark.e2e


@dataclass
class Sent:
    """What the producer delivered so far, summed over every stream sent to the topic."""

    delivered: int = 0
    valid: int = 0
    malformed: int = 0

    def send(self, settings: PulseSettings, seed: int, events: int = 2_500) -> None:
        summary = produce(
            ProduceOptions(events=events, rate=0, seed=seed, inject_bad=0.03, duplicates=0.05, late=0.05,
                           max_late_s=600),
            settings.kafka_client_config(), settings.kafka_topic, progress=None, echo=lambda _: None,
        )  # fmt: skip
        assert summary.failed == 0
        self.delivered += summary.delivered
        self.valid += summary.valid
        self.malformed += sum(summary.injected.values())


def test_resets_and_job_mode_switches_leave_every_table_exact(spark, broker: Broker) -> None:
    """The deploy's reset, then `all` → split jobs → resets of both → `all` again over one lake.

    Before: the rerun after a reset died on `MERGE matched a target row with multiple source rows`
    (Bronze and Silver had a second copy of every record), and `bronze --once` after `all` landed every
    record again.
    """
    settings = load_settings()
    lake = broker.home / "lake"
    sent = Sent()

    def then_exact(*jobs: str) -> None:
        """Run each job with `--once`, in order, then check every table of the lake."""
        for job in jobs:
            run_pipeline(PipelineOptions(job, once=True), settings)
        assert_every_table_exact(lake, sent.delivered, sent.valid, sent.malformed)

    sent.send(settings, seed=11)
    then_exact("all")
    reset.move_checkpoints_aside(spark, settings, "c1", ["pipeline"])
    then_exact("all")

    # `all` → the split jobs, as a switch to Databricks' scheduled mode does.
    sent.send(settings, seed=12)
    then_exact("bronze", "silver")
    reset.move_checkpoints_aside(spark, settings, "c2", ["bronze", "refine"])
    sent.send(settings, seed=13)
    then_exact("bronze", "silver")

    # The split jobs → `all`, with rows `bronze` landed and `silver` never refined, and `all`'s own
    # checkpoint from before the split (it would read those records again).
    sent.send(settings, seed=14)
    then_exact("bronze", "all")
    assert not (lake / "_checkpoints" / "refine").exists(), "`all` retires the refine checkpoint it drained"
    sent.send(settings, seed=15)
    then_exact("silver", "all")  # `silver` starts at `all`'s newest commit: nothing twice


def test_a_second_run_is_refused_and_a_killed_one_is_taken_over(
    spark, broker: Broker, tmp_path: Path
) -> None:
    """A second `pulse pipeline all` on a lake a live one writes refuses to start, naming the live one;
    after that one is SIGKILLed (no release), the next run starts at once and the lake stays exact.

    Before: the second run started, and Gold ended one event short in two minutes of two videos.
    """
    settings = load_settings()
    lake = broker.home / "lake"
    sent = Sent()
    sent.send(settings, seed=21, events=4_000)
    log = tmp_path / "first.log"
    first = start_live_pipeline(log, "--max-offsets-per-trigger", "1000")
    try:
        wait_for_log_line(log, "pipeline batch 1:", first)
        second = run_pulse("pipeline", "all", "--once", timeout=300)
        assert second.returncode != 0, second.stderr[-3000:]
        refusal = second.stderr.strip().splitlines()[-1]
        assert "the lake is already written by `pulse pipeline all`" in refusal, second.stderr[-3000:]
        assert f"pid {first.pid}" in refusal
        assert "Traceback" not in second.stderr
        assert first.poll() is None, "the live run must go on"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and its JVM: the lease is never released
        first.wait()
    began = time.monotonic()
    run_pipeline(
        PipelineOptions("all", once=True), settings
    )  # same host, dead process: taken over without waiting for the lease to expire
    print(f"\nrun after a SIGKILLed lease holder: caught up in {time.monotonic() - began:.1f} s")
    assert_every_table_exact(lake, sent.delivered, sent.valid, sent.malformed)


def test_a_reset_is_refused_while_a_run_writes_the_lake(spark, broker: Broker, tmp_path: Path) -> None:
    """`pulse reset-checkpoints` takes the leases too: moving a live query's checkpoint away under it
    would make it write a new one beside its own data."""
    settings = load_settings()
    Sent().send(settings, seed=31, events=500)
    log = tmp_path / "live.log"
    live = start_live_pipeline(log)
    try:
        wait_for_log_line(log, "pipeline batch 0:", live)
        refused = run_pulse("reset-checkpoints", "--commit=c3", "pipeline", timeout=300)
        assert refused.returncode != 0
        assert "already written by `pulse pipeline all`" in refused.stderr, refused.stderr[-3000:]
        assert (broker.home / "lake" / "_checkpoints" / "pipeline").exists()
    finally:
        os.killpg(live.pid, signal.SIGINT)
        live.wait(timeout=180)
    moved = reset.move_checkpoints_aside(get_spark("pulse-tests", settings), settings, "c3", ["pipeline"])
    assert moved == [f"pipeline: checkpoint moved from {settings.checkpoint_path('pipeline')} to "
                     f"{reset.reset_location(settings, 'c3', 'pipeline')}"]  # fmt: skip


def test_the_lease_committed_through_spark_as_on_a_cloud_lake(spark, tmp_path: Path) -> None:
    """A cloud lake's lease (or one on a job cluster's base install, which has no deltalake) is committed
    and read through Spark's Delta; the same verdicts as through delta-rs."""
    store = DeltaLeaseStore(str(tmp_path / "_leases" / "refine"), spark)
    first = WriterLease(store, "refine", "pipeline all")
    first.acquire()
    first.renew()
    first.check()
    second = WriterLease(store, "refine", "pipeline silver")
    second.host = "another-host"
    with pytest.raises(LeaseHeldError, match=r"already written by `pulse pipeline all`"):
        second.acquire()
    first.release()
    second.acquire()
    assert [record.kind for record in store.read(10)] == ["claim", "renew", "release", "claim"]
    assert holder_of(store.read(10)).holder == second.token
