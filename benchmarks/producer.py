"""Benchmark 1: `pulse produce` events/s against Kafka's own Java ProducerPerformance.

Both run against the same local broker, one after the other and alternating, with the same record
size (pulse's mean event, measured from the same simulator), acks=all, idempotence, lz4, linger 10 ms
and 512 KiB batches (pulse's own producer settings). The headline is the median over the rounds.
"""

from __future__ import annotations

import itertools
import re
import statistics
import subprocess
from datetime import UTC, datetime
from typing import Any

from app.local.java import find_java
from benchmarks.common import (
    KAFKA_CLASSPATH,
    Result,
    Workspace,
    broker,
    checked,
    create_topic,
    log,
    produce_as_fast_as_possible,
    ratio,
    workspace,
)

NAME = "producer"
FULL = {"events": 500_000, "rounds": 3}
QUICK = {"events": 25_000, "rounds": 1}
PRODUCER_CONFIG = "acks=all enable.idempotence=true compression.type=lz4 linger.ms=10 batch.size=524288"
SEED = 8
PERF_LINE = re.compile(r"([\d]+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")
QUIET_LOG4J = """\
status = error
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %p %m%n
rootLogger.level = ERROR
rootLogger.appenderRef.stderr.ref = STDERR
"""


def measured_record_size(sample: int = 20_000) -> dict[str, float]:
    """Mean key and value size in bytes of pulse's simulated events (the ones `pulse produce` sends)."""
    from app.producer.simulator import AudienceConfig, AudienceSimulator

    events = AudienceSimulator(AudienceConfig(), datetime.now(UTC), SEED).events()
    values, keys = [], []
    for event in itertools.islice(events, sample):
        values.append(len(event.to_json().encode()))
        keys.append(len(event.video_id.encode()))
    return {"value_bytes": statistics.fmean(values), "key_bytes": statistics.fmean(keys), "sample": sample}


def java_producer_performance(ws: Workspace, topic: str, events: int, record_size: int) -> dict[str, Any]:
    """Run ProducerPerformance once; its last summary line gives records/s."""
    log4j = ws.home / "perf-log4j2.properties"
    log4j.write_text(QUIET_LOG4J)
    command = [
        str(find_java()),
        f"-Dlog4j2.configurationFile={log4j}",
        "-Xmx512m",
        "-cp",
        KAFKA_CLASSPATH,
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(events),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={ws.bootstrap}",
        "acks=all",
        "enable.idempotence=true",
        "compression.type=lz4",
        "linger.ms=10",
        "batch.size=524288",
    ]
    done = checked(
        subprocess.run(command, capture_output=True, text=True, timeout=900, check=False),
        "ProducerPerformance",
    )
    matches = PERF_LINE.findall(done.stdout)
    if not matches:
        raise RuntimeError(f"no summary line from ProducerPerformance:\n{done.stdout[-2000:]}")
    sent, per_second, mb_per_second = matches[-1]
    return {
        "records": int(sent),
        "events_per_second": float(per_second),
        "mb_per_second": float(mb_per_second),
    }


def pulse_produce(ws: Workspace, topic: str, events: int) -> dict[str, Any]:
    """Run `pulse produce --rate 0` once; its summary JSON gives events/s (generation included)."""
    summary = produce_as_fast_as_possible(ws, events, SEED, timeout=900, PULSE_KAFKA_TOPIC=topic)
    return {
        "records": summary["sent"],
        "delivered": summary["delivered"],
        "elapsed_s": summary["elapsed_s"],
        "events_per_second": summary["events_per_second"],
    }


def run(quick: bool) -> Result:
    """Alternate Java and pulse runs on one broker; compare the medians."""
    size = QUICK if quick else FULL
    sizes = measured_record_size()
    record_size = round(sizes["value_bytes"])
    java_runs: list[dict[str, Any]] = []
    pulse_runs: list[dict[str, Any]] = []
    with workspace(NAME) as ws, broker(ws):
        for round_no in range(size["rounds"]):
            java_topic, pulse_topic = f"perf-java-{round_no}", f"perf-pulse-{round_no}"
            create_topic(ws.bootstrap, java_topic)
            create_topic(ws.bootstrap, pulse_topic)
            log(
                f"producer round {round_no + 1}/{size['rounds']}: Java ProducerPerformance, "
                f"{size['events']:,} records"
            )
            java_runs.append(java_producer_performance(ws, java_topic, size["events"], record_size))
            log(f"  java: {java_runs[-1]['events_per_second']:,.0f}/s; now pulse produce")
            pulse_runs.append(pulse_produce(ws, pulse_topic, size["events"]))
            log(f"  pulse: {pulse_runs[-1]['events_per_second']:,.0f}/s")
    java_eps = statistics.median(r["events_per_second"] for r in java_runs)
    pulse_eps = statistics.median(r["events_per_second"] for r in pulse_runs)
    ratio_value = ratio(pulse_eps, java_eps)
    return Result(
        name=NAME,
        quick=quick,
        parameters={
            **size,
            "record_size_bytes": record_size,
            "measured_sizes": {k: round(v, 1) for k, v in sizes.items()},
            "producer_config": PRODUCER_CONFIG,
            "partitions": 3,
        },
        metric="events/s",
        unit="events/s",
        better="higher",
        baseline={"label": "Java ProducerPerformance", "value": round(java_eps), "runs": java_runs},
        candidate={"label": "pulse produce --rate 0", "value": round(pulse_eps), "runs": pulse_runs},
        ratio=ratio_value,
        target=">= 1.0x",
        passed=ratio_value is not None and ratio_value >= 1.0,
        notes=[
            "pulse's figure includes simulating and JSON-encoding each event in Python; "
            "ProducerPerformance sends one fixed random payload.",
            "pulse keys each record by video_id (5 videos, so batches go to a few partitions); "
            "ProducerPerformance sends null keys (sticky partitioner).",
        ],
    )
