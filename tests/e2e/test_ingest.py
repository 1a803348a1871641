"""Producer → Kafka → Bronze → Silver (+ quarantine) on a real broker, real Spark and real Delta."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pulse.jobs.runner import PipelineOptions, run_pipeline
from pulse.producer.run import ProduceOptions, produce
from pulse.progress_log import read_progress_log
from pulse_core.settings import load_settings
from tests.app.test_contract import SAMPLE
from tests.e2e.conftest import Broker, run_pulse

pytestmark = pytest.mark.e2e


def _table(home: Path, layer: str, name: str) -> list[dict]:
    # Bronze's value holds the raw bytes, which may not be UTF-8: read it as binary.
    table = DeltaTable(str(home / "lake" / layer / name)).to_pyarrow_table()
    if "value" in table.column_names and layer == "bronze":
        table = table.set_column(table.column_names.index("value"), "value", table["value"].cast("binary"))
    return table.to_pylist()


def test_counts_reconcile_class_by_class(spark, broker: Broker, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    produced = run_pulse(
        "produce", "--events", "20000", "--rate", "0", "--seed", "2025",
        "--inject-bad", "0.02", "--duplicates", "0.02", "--summary-json", str(summary_path),
    )  # fmt: skip
    assert produced.returncode == 0, produced.stdout + produced.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["failed"] == 0
    assert summary["delivered"] == summary["sent"] == 20000 + summary["duplicates"]

    progress_log = tmp_path / "progress.jsonl"
    for job in ("bronze", "silver"):
        ran = run_pulse("pipeline", job, "--once", "--progress-log", str(progress_log), timeout=600)
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert f"{job}: caught up" in ran.stderr
    assert "pipeline batch 0:" in ran.stderr
    # The progress log tells the same story as the tables, batch by batch.
    records = read_progress_log(progress_log)
    assert [r["stage"] for r in records if r["kind"] == "caught_up"] == ["bronze", "silver"]
    batches = {
        s: [r for r in records if (r["kind"], r["stage"]) == ("batch", s)] for s in ("bronze", "refine")
    }
    assert sum(r["rows_in"] for r in batches["bronze"]) == summary["delivered"]
    refined = batches["refine"]
    assert [r["batch_id"] for r in refined] == list(range(len(refined)))
    assert sum(r["rows_in"] for r in refined) == summary["delivered"]
    assert sum(r["inserted"] for r in refined) == summary["valid"]
    assert sum(r["quarantined"] for r in refined) == sum(summary["injected"].values())
    assert all(r["seconds"] > 0 and r["newest_event_time"] for r in refined)

    bronze = _table(broker.home, "bronze", "events_raw")
    silver = _table(broker.home, "silver", "events")
    quarantine = _table(broker.home, "silver", "quarantine")
    assert len(bronze) == summary["delivered"]
    assert Counter(row["reason"] for row in quarantine) == Counter(summary["injected"])
    assert len(silver) == summary["valid"]
    assert len({row["event_id"] for row in silver}) == len(silver)
    assert len(silver) + len(quarantine) + summary["duplicates"] == len(bronze)
    # Every Bronze row is accounted for by its Kafka coordinates.
    landed = {(r["kafka_partition"], r["kafka_offset"]) for r in silver + quarantine}
    assert landed <= {(r["partition"], r["offset"]) for r in bronze}


def test_seed_file_replays_cleanly(spark, broker: Broker, tmp_path: Path) -> None:
    settings = load_settings(progress_log=tmp_path / "progress.jsonl")
    summary = produce(ProduceOptions(from_file=SAMPLE, rate=0), settings.kafka_client_config(),
                      settings.kafka_topic, progress=None, echo=lambda _: None)  # fmt: skip
    lines = SAMPLE.read_text().splitlines()
    assert summary.delivered == len(lines)
    run_pipeline(PipelineOptions("all", once=True), settings)
    silver = _table(broker.home, "silver", "events")
    assert _table(broker.home, "silver", "quarantine") == []
    assert len(silver) == len(lines)
    *batches, caught_up = read_progress_log(tmp_path / "progress.jsonl")
    assert (caught_up["kind"], caught_up["stage"]) == ("caught_up", "all")
    assert {r["stage"] for r in batches} == {"pipeline"}
    assert sum(r["inserted"] for r in batches) == len(lines)
    newest = max(datetime.fromisoformat(r["newest_event_time"]) for r in batches)
    assert newest == max(r["event_time"] for r in silver)
    assert all(datetime.fromisoformat(r["committed_at"]) > newest for r in batches)
    by_key = {(r["user_id"], r["video_id"], r["event"], r["payload"]) for r in silver}
    expected = {(b["user_id"], b["video_id"], b["event"], b.get("payload")) for b in map(json.loads, lines)}
    assert by_key == expected


def test_restart_loses_nothing_and_duplicates_nothing(spark, broker: Broker) -> None:
    settings = load_settings()
    client, topic = settings.kafka_client_config(), settings.kafka_topic

    def send(**options: object) -> int:
        summary = produce(ProduceOptions(**options), client, topic, progress=None, echo=lambda _: None)  # type: ignore[arg-type]
        assert summary.failed == 0
        return summary.valid

    first = send(events=3000, rate=0, seed=1, start=_past())
    run_pipeline(PipelineOptions("all", once=True), settings)
    assert len(_table(broker.home, "silver", "events")) == first

    # After the restart: a full resend of the first run (retries arriving minutes later) plus new events.
    send(events=3000, rate=0, seed=1, start=_past())
    second = send(events=2000, rate=0, seed=2, start=_past())
    run_pipeline(PipelineOptions("all", once=True), settings)
    silver = _table(broker.home, "silver", "events")
    assert len(silver) == first + second
    assert len({r["event_id"] for r in silver}) == len(silver)
    assert len(_table(broker.home, "bronze", "events_raw")) == 8000


def _past():
    from datetime import UTC, datetime

    return datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_hot_partition_is_read_by_several_tasks_and_every_record_once(spark, broker: Broker) -> None:
    """One video's events share one Kafka partition (the key is the video). Spark still spreads a long
    offset range over several tasks (`PULSE_KAFKA_RECORDS_PER_TASK`), so one popular video does not leave
    every other task slot idle, and the split neither loses nor repeats a record."""
    from pulse import io

    produced = run_pulse("produce", "--events", "5000", "--rate", "0", "--videos", "1", "--seed", "7")
    assert produced.returncode == 0, produced.stdout + produced.stderr
    settings = load_settings().model_copy(update={"kafka_records_per_task": 1_000})
    source = io.KafkaSource.from_settings(settings)
    seen: list[tuple[int, list[tuple[int, int]]]] = []

    def collect(batch, batch_id: int) -> None:
        rows = batch.select("partition", "offset").collect()
        seen.append((batch.rdd.getNumPartitions(), [(row[0], row[1]) for row in rows]))

    query = (
        io.read_kafka_stream(spark, source)
        .writeStream.foreachBatch(collect)
        .trigger(availableNow=True)
        .option("checkpointLocation", str(broker.home / "split-checkpoint"))
        .start()
    )
    query.awaitTermination(300)
    records = [record for _, batch in seen for record in batch]
    assert len(records) == len(set(records)) == 5000
    hot = Counter(partition for partition, _ in records).most_common(1)[0][1]
    assert hot == 5000, "one video's events all share a partition"
    tasks = sum(count for count, _ in seen)
    assert tasks >= 5, f"5,000 records of one partition at most 1,000 a task were read by {tasks} tasks"
