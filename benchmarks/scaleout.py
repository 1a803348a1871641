"""Benchmark 8: does Pulse scale out? `pulse pipeline all --once` over the same topic with one Spark task
slot and with two (issue 22's first target).

A Spark job should get faster with more task slots. Today's pipeline does its per-event work in pandas on
the driver, so the second slot only helps the Kafka read and check. The figures:

- events/s with `PULSE_SPARK_MASTER=local[1]` and `local[2]`, each over a fresh lake, alternated over the
  rounds, and the ratio of the medians (target ≥ 1.7x at the quartiles, benchmarks.spread);
- the same when one video holds 90% of the events (target ≥ 1.6x): no single key may bound the work;
- the driver's Python process: CPU seconds per 100k events and its peak RSS (the JVM's are apart).

Both topics are filled once; every run reads the whole topic from a lake of its own.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil

from benchmarks.harness import REPO, Workspace, broker, checked, create_topic, log, pulse, workspace
from benchmarks.pipeline_progress import caught_up
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.spread import Target, all_met, compare
from pulse.producer.options import DEFAULT_RATE
from pulse.progress_log import BATCH, read_progress_log

NAME = "scaleout"
FULL = {"events": 300_000, "rounds": 5}
# Two rounds: a smoke run, which gives no verdict (benchmarks.spread.MIN_ROUNDS).
QUICK = {"events": 30_000, "rounds": 2}
TARGET = Target(1.7, "higher")
TARGET_SKEWED = Target(1.6, "higher")
MASTERS = ("local[1]", "local[2]")
TOPICS = {"scaleout-even": False, "scaleout-skewed": True}  # topic: one video holds 90% of the events


# The cold videos of the skewed topic are produced in this many slices spread over the hot video's span.
COLD_SLICES = 10


def _fill(ws: Workspace, topic: str, events: int, skewed: bool) -> int:
    """Produce `events` to `topic`: 20 videos, or (skewed) 90% of them on one video. Returns delivered.

    Both parts of the skewed topic cover the same event time, as one live stream beside 19 quiet ones
    would. `pulse produce --rate 0` sizes its audience at the default rate, so the hot video's 90% spans
    ~45 minutes of event time; the cold 10% goes in slices started across that span. (Produced each at
    once, the cold part covered the last 5 minutes only: read first, it moved the pipeline's recent state
    past the hot video's first half hour, whose batches then took the slow path.)
    """
    create_topic(ws.bootstrap, topic)
    span_s = events * 9 // 10 / DEFAULT_RATE if skewed else events / DEFAULT_RATE
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=span_s)
    if skewed:
        hot = events * 9 // 10
        per_slice, rest = divmod(events - hot, COLD_SLICES)
        cold = [per_slice + (i < rest) for i in range(COLD_SLICES)]
        parts = [(hot, 1, 31, start)] + [
            (count, 20, 32 + i, start + timedelta(seconds=span_s * i / COLD_SLICES))
            for i, count in enumerate(cold)
        ]
    else:
        parts = [(events, 20, 33, start)]
    delivered = 0
    for count, videos, seed, first in parts:
        done = checked(
            pulse(ws, "produce", "--events", str(count), "--rate", "0", "--videos", str(videos),
                  "--seed", str(seed), "--start", first.isoformat(), timeout=1800, PULSE_KAFKA_TOPIC=topic),
            f"pulse produce to {topic}",
        )  # fmt: skip
        delivered += count
        log(f"  {topic}: {done.stdout.strip().splitlines()[0] if done.stdout.strip() else count}")
    return delivered


def _once(ws: Workspace, topic: str, master: str, tag: str) -> dict[str, Any]:
    """One `pulse pipeline all --once` over `topic` on a fresh lake; its time and the driver's CPU and RSS."""
    lake = ws.home / f"lake-{tag}"
    progress_log = ws.home / f"progress-{tag}.jsonl"
    env = ws.env(PULSE_LAKE=str(lake), PULSE_KAFKA_TOPIC=topic, PULSE_SPARK_MASTER=master)
    with (ws.home / f"pipeline-{tag}.log").open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "pipeline", "all", "--once",
             "--progress-log", str(progress_log)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    driver = psutil.Process(child.pid)
    cpu_s, rss = 0.0, 0
    while child.poll() is None:
        try:
            times = driver.cpu_times()
            cpu_s = times.user + times.system
            rss = max(rss, driver.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.25)
    if child.returncode != 0:
        output = (ws.home / f"pipeline-{tag}.log").read_text(errors="replace")
        raise RuntimeError(f"pulse pipeline all --once failed:\n{output[-3000:]}")
    records = read_progress_log(progress_log)
    seconds = caught_up(records)["all"]
    shutil.rmtree(lake, ignore_errors=True)
    return {
        "seconds": seconds,
        "driver_cpu_s": round(cpu_s, 1),
        "driver_peak_rss_mib": rss // 2**20,
        **where_the_time_went(records, seconds),
    }


# The parts of a run's seconds (`where_the_time_went`), with the labels the report gives them.
PARTS = {
    "spark_check_s": "Spark read+check",
    "driver_batch_s": "driver's batch work",
    "outside_batches_s": "outside batches",
}


def where_the_time_went(records: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    """A run's seconds in three parts: the Spark job that reads and checks each batch (it spreads over task
    slots), the driver's work on each batch after it (dedupe, Gold, the commits: one Python thread), and
    what the run spends outside its batches (query start, planning, the first offsets)."""
    batches = [r for r in records if r["kind"] == BATCH]
    in_batches = sum(float(r["seconds"]) for r in batches)
    spark = sum(float(r.get("phases", {}).get("check", 0.0)) for r in batches)
    return {
        "batches": len(batches),
        "spark_check_s": round(spark, 2),
        "driver_batch_s": round(in_batches - spark, 2),
        "outside_batches_s": round(max(seconds - in_batches, 0.0), 2),
    }


def run(quick: bool) -> Result:
    """Fill both topics; then, round after round, local[1] and local[2] over each (A B A B …); compare
    events/s at the quartiles."""
    size = QUICK if quick else FULL
    events = size["events"]
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with workspace(NAME) as ws, broker(ws):
        delivered = {}
        for topic, one_video_heavy in TOPICS.items():
            log(f"scaleout: filling {topic} with {events:,} events")
            delivered[topic] = _fill(ws, topic, events, one_video_heavy)
            measured[topic] = {master: [] for master in MASTERS}
        for round_no in range(size["rounds"]):
            for topic in TOPICS:
                for master in MASTERS:
                    tag = f"{topic}-{master[6:-1]}-{round_no}"
                    log(f"scaleout round {round_no + 1}/{size['rounds']}: {topic}, {master}")
                    run_ = _once(ws, topic, master, tag)
                    run_["events_per_s"] = round(delivered[topic] / run_["seconds"])
                    run_["driver_cpu_s_per_100k"] = round(
                        run_["driver_cpu_s"] * 100_000 / delivered[topic], 2
                    )
                    measured[topic][master].append(run_)
                    log(f"  {run_}")

    def figures(topic: str, master: str, key: str) -> list[float]:
        return [r[key] for r in measured[topic][master]]

    verdicts = {
        topic: compare(
            figures(topic, "local[1]", "events_per_s"), figures(topic, "local[2]", "events_per_s"), "higher",
            target,
        )
        for topic, target in (("scaleout-even", TARGET), ("scaleout-skewed", TARGET_SKEWED))
    }  # fmt: skip
    rows = [
        compared_rounds(f"{topic.split('-')[1]} topic, local[2] ÷ local[1]: events/s", verdict, "events/s")
        for topic, verdict in verdicts.items()
    ]
    rows += [
        {"label": f"{topic.split('-')[1]} topic, {master}: driver CPU s per 100k events (median)",
         "candidate": statistics.median(figures(topic, master, "driver_cpu_s_per_100k")), "unit": "s"}
        for topic in TOPICS for master in MASTERS
    ]  # fmt: skip
    rows += [
        {"label": f"{topic.split('-')[1]} topic, {master}: {label} s (median)",
         "candidate": statistics.median(figures(topic, master, key)), "unit": "s"}
        for topic in TOPICS for master in MASTERS for key, label in PARTS.items()
    ]  # fmt: skip
    rows += [
        {"label": f"{topic.split('-')[1]} topic, {master}: driver peak RSS (max)",
         "candidate": max(figures(topic, master, "driver_peak_rss_mib")), "unit": "MiB"}
        for topic in TOPICS for master in MASTERS
    ]  # fmt: skip
    met = [verdict["met"] for verdict in verdicts.values()]
    return Result(
        name=NAME,
        quick=quick,
        parameters=size | {"masters": list(MASTERS), "order": "per round and topic: local[1], local[2]"},
        metric="events/s with local[2] ÷ local[1]",
        unit="events/s",
        better="higher",
        **headline(verdicts["scaleout-even"], {"label": "local[1]"}, {"label": "local[2]"}),
        target=f"{TARGET} at the quartiles (one video at 90%: {TARGET_SKEWED})",
        passed=all_met(met),
        rows=rows,
        details={"runs": measured},
        notes=["Each run on a fresh lake; the Spark session start is excluded (the caught-up record)."],
    )
