"""Benchmark 1: `pulse produce` events/s against Kafka's own Java ProducerPerformance.

Both run against the same local broker, one after the other and alternating, with the same record
size (pulse's mean event, measured from the same simulator), acks=all, idempotence, lz4, linger 10 ms
and 512 KiB batches (pulse's own producer settings). Two record sizes: the mean event, and the mean
event when every chat message is 500 characters (`--chat-chars 500`). The headline is the ratio of the
medians over the rounds at the mean event; the target (at least 1.0x) must hold at the quartiles at both sizes
(benchmarks.spread). The peak RSS of each producer process is sampled while it runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from benchmarks.harness import KAFKA_CLASSPATH, REPO, Workspace, broker, create_topic, log, workspace
from benchmarks.result import Result, compared_rounds, headline, ratio
from benchmarks.rss import RssSampler
from benchmarks.spread import Target, all_met, compare
from pulse.devstack.java import find_java

NAME = "producer"
FULL = {"events": 500_000, "rounds": 5}
QUICK = {"events": 25_000, "rounds": 5}
TARGET = Target(1.0, "higher")
PRODUCER_CONFIG = "acks=all enable.idempotence=true compression.type=lz4 linger.ms=10 batch.size=524288"
SEED = 8
LONG_CHAT = 500  # characters in every chat message, for the second record size
GIB = 1024**3
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


def measured_record_size(sample: int, chat_chars: int | None = None) -> dict[str, float]:
    """Mean key and value size in bytes of the first `sample` events `pulse produce --seed 8` sends."""
    from pulse.producer.feed import FeedSpec, batches
    from pulse.producer.simulator import AudienceConfig

    spec = FeedSpec(AudienceConfig(chat_chars=chat_chars), datetime.now(UTC), SEED, events=sample)
    values = keys = 0
    for batch in batches(spec):
        values += sum(map(len, batch.values))
        keys += sum(map(len, batch.keys))
    return {"value_bytes": values / sample, "key_bytes": keys / sample, "sample": sample}


def _run_sampled(command: list[str], env: dict[str, str] | None, what: str) -> tuple[str, int]:
    """Run a command to the end while sampling its RSS; returns its stdout and its peak RSS in bytes."""
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = RssSampler({what: process.pid}, interval_s=0.1).start()
    try:
        stdout, stderr = process.communicate(timeout=900)
    finally:
        sampler.stop()
    if process.returncode != 0:
        raise RuntimeError(f"{what} failed ({process.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return stdout, sampler.peaks.get(what, 0)


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
    stdout, peak = _run_sampled(command, None, "ProducerPerformance")
    matches = PERF_LINE.findall(stdout)
    if not matches:
        raise RuntimeError(f"no summary line from ProducerPerformance:\n{stdout[-2000:]}")
    sent, per_second, mb_per_second = matches[-1]
    return {
        "records": int(sent),
        "events_per_second": float(per_second),
        "mb_per_second": float(mb_per_second),
        "peak_rss_bytes": peak,
    }


def pulse_produce(ws: Workspace, topic: str, events: int, chat_chars: int | None = None) -> dict[str, Any]:
    """Run `pulse produce --rate 0` once; its summary JSON gives events/s (generation included)."""
    summary_file = ws.home / f"produce-{topic}.json"
    command = [sys.executable, "-m", "pulse.cli", "produce", "--events", str(events), "--rate", "0",
               "--seed", str(SEED), "--summary-json", str(summary_file)]  # fmt: skip
    if chat_chars is not None:
        command += ["--chat-chars", str(chat_chars)]
    _, peak = _run_sampled(command, ws.env(PULSE_KAFKA_TOPIC=topic), "pulse produce")
    summary = json.loads(summary_file.read_text())
    if summary["failed"] or summary["delivered"] != summary["sent"]:
        raise RuntimeError(f"pulse produce: {summary['failed']} failed deliveries: {summary['errors']}")
    return {
        "records": summary["sent"],
        "delivered": summary["delivered"],
        "elapsed_s": summary["elapsed_s"],
        "events_per_second": summary["events_per_second"],
        "peak_rss_bytes": peak,
    }


def run(quick: bool) -> Result:
    """Alternate Java and pulse runs (A B A B …) on one broker, at both record sizes, over the rounds; the
    target holds at the quartiles (benchmarks.spread) at both sizes."""
    size = QUICK if quick else FULL
    shapes: dict[str, dict[str, Any]] = {
        shape: {"chat_chars": chars, "sizes": measured_record_size(size["events"], chat_chars=chars)}
        for shape, chars in (("mean event", None), (f"{LONG_CHAT}-character chat", LONG_CHAT))
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {shape: {"java": [], "pulse": []} for shape in shapes}
    with workspace(NAME) as ws, broker(ws):
        for round_no in range(size["rounds"]):
            for index, (shape, spec) in enumerate(shapes.items()):
                record_size = round(spec["sizes"]["value_bytes"])
                java_topic, pulse_topic = f"perf-java-{index}-{round_no}", f"perf-pulse-{index}-{round_no}"
                create_topic(ws.bootstrap, java_topic)
                create_topic(ws.bootstrap, pulse_topic)
                log(
                    f"producer round {round_no + 1}/{size['rounds']}, {shape} ({record_size} B): "
                    f"Java ProducerPerformance, {size['events']:,} records"
                )
                java = java_producer_performance(ws, java_topic, size["events"], record_size)
                runs[shape]["java"].append(java)
                log(f"  java: {java['events_per_second']:,.0f}/s; now pulse produce")
                pulse = pulse_produce(ws, pulse_topic, size["events"], spec["chat_chars"])
                runs[shape]["pulse"].append(pulse)
                log(f"  pulse: {pulse['events_per_second']:,.0f}/s")

    def rates(shape: str, side: str) -> list[float]:
        return [r["events_per_second"] for r in runs[shape][side]]

    def peak(shape: str, side: str) -> float:
        return round(max(r["peak_rss_bytes"] for r in runs[shape][side]) / GIB, 3)

    verdicts = {
        shape: compare(rates(shape, "java"), rates(shape, "pulse"), "higher", TARGET) for shape in shapes
    }
    rows = []
    for shape, spec in shapes.items():
        label = f"{shape}: {round(spec['sizes']['value_bytes'])} B values, events/s"
        rows.append(compared_rounds(label, verdicts[shape], "events/s"))
        rows.append({
            "label": f"{shape}: producer peak RSS (GiB)",
            "baseline": peak(shape, "java"), "candidate": peak(shape, "pulse"), "unit": "GiB",
            "ratio": ratio(peak(shape, "pulse"), peak(shape, "java")),
        })  # fmt: skip
    met = [verdict["met"] for verdict in verdicts.values()]
    return Result(
        name=NAME,
        quick=quick,
        parameters={
            **size,
            "order": "per round and record size: Java, then pulse (A B A B …)",
            "record_sizes_bytes": {
                shape: round(spec["sizes"]["value_bytes"]) for shape, spec in shapes.items()
            },
            "measured_sizes": {
                shape: {k: round(v, 1) for k, v in spec["sizes"].items()} for shape, spec in shapes.items()
            },
            "producer_config": PRODUCER_CONFIG,
            "partitions": 3,
        },
        metric="events/s",
        unit="events/s",
        better="higher",
        **headline(
            verdicts[next(iter(shapes))],
            {"label": "Java ProducerPerformance"},
            {"label": "pulse produce --rate 0"},
        ),
        target=f"{TARGET} at the quartiles (both record sizes)",
        passed=all_met(met),
        rows=rows,
        details={"runs": runs},
        notes=[
            "pulse's figure includes simulating and JSON-encoding each event in Python; "
            "ProducerPerformance sends one fixed random payload.",
            "pulse keys each record by video_id (5 videos, so batches go to a few partitions); "
            "ProducerPerformance sends null keys (sticky partitioner).",
            "Peak RSS is sampled every 0.1 s (children included); the Java tool runs with -Xmx512m.",
        ],
    )
