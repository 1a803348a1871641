"""Benchmark 8: does Pulse scale out? `pulse pipeline all --once` over the same topic with one Spark task
slot and with two (issue 22's first target).

A Spark job should get faster with more task slots. Today's pipeline does its per-event work in pandas on
the driver, so the second slot only helps the Kafka read and check. The figures:

- events/s with `PULSE_SPARK_MASTER=local[1]` and `local[2]`, each over a fresh lake, and the ratio
  (target ≥ 1.7x);
- the same when one video holds 90% of the events (target ≥ 1.6x): no single key may bound the work;
- the driver's Python process: CPU seconds per 100k events and its peak RSS (the JVM's are apart).

Both topics are filled once; every run reads the whole topic from a lake of its own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import psutil

from benchmarks.harness import REPO, Workspace, broker, checked, create_topic, log, pulse, workspace
from benchmarks.pipeline_progress import caught_up
from benchmarks.result import Result, ratio
from pulse.progress_log import BATCH, read_progress_log

NAME = "scaleout"
FULL = {"events": 300_000}
QUICK = {"events": 30_000}
TARGET = 1.7
TARGET_SKEWED = 1.6
MASTERS = ("local[1]", "local[2]")


def _fill(ws: Workspace, topic: str, events: int, skewed: bool) -> int:
    """Produce `events` to `topic`: 20 videos, or (skewed) 90% of them on one video. Returns delivered."""
    create_topic(ws.bootstrap, topic)
    one_video = events * 9 // 10
    parts = [(one_video, 1, 31), (events - one_video, 20, 32)] if skewed else [(events, 20, 33)]
    delivered = 0
    for count, videos, seed in parts:
        done = checked(
            pulse(ws, "produce", "--events", str(count), "--rate", "0", "--videos", str(videos),
                  "--seed", str(seed), timeout=1800, PULSE_KAFKA_TOPIC=topic),
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
    return {
        "seconds": seconds,
        "driver_cpu_s": round(cpu_s, 1),
        "driver_peak_rss_mib": rss // 2**20,
        **where_the_time_went(records, seconds),
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
    size = QUICK if quick else FULL
    events = size["events"]
    measured: dict[str, dict[str, dict[str, Any]]] = {}
    with workspace(NAME) as ws, broker(ws):
        for topic, one_video_heavy in (("scaleout-even", False), ("scaleout-skewed", True)):
            log(f"scaleout: filling {topic} with {events:,} events")
            delivered = _fill(ws, topic, events, one_video_heavy)
            measured[topic] = {}
            for master in MASTERS:
                tag = f"{topic}-{master[6:-1]}"
                log(f"scaleout: {topic}, {master}")
                run_ = _once(ws, topic, master, tag)
                run_["events_per_s"] = round(delivered / run_["seconds"])
                run_["driver_cpu_s_per_100k"] = round(run_["driver_cpu_s"] * 100_000 / delivered, 2)
                measured[topic][master] = run_
                log(f"  {run_}")
    even, skewed = measured["scaleout-even"], measured["scaleout-skewed"]
    even_ratio = ratio(even["local[2]"]["events_per_s"], even["local[1]"]["events_per_s"])
    skewed_ratio = ratio(skewed["local[2]"]["events_per_s"], skewed["local[1]"]["events_per_s"])
    rows = [
        {"label": f"{topic.split('-')[1]} topic, {master}: events/s",
         "baseline": by_master["local[1]"]["events_per_s"], "candidate": m["events_per_s"],
         "unit": "events/s", "ratio": ratio(m["events_per_s"], by_master["local[1]"]["events_per_s"])}
        for topic, by_master in measured.items() for master, m in by_master.items() if master != "local[1]"
    ]  # fmt: skip
    rows += [
        {"label": f"{topic.split('-')[1]} topic, {master}: driver CPU s per 100k events",
         "candidate": m["driver_cpu_s_per_100k"], "unit": "s"}
        for topic, by_master in measured.items() for master, m in by_master.items()
    ]  # fmt: skip
    rows += [
        {"label": f"{topic.split('-')[1]} topic, {master}: {part} s",
         "candidate": m[key], "unit": "s"}
        for topic, by_master in measured.items() for master, m in by_master.items()
        for key, part in (("spark_check_s", "Spark read+check"), ("driver_batch_s", "driver's batch work"),
                          ("outside_batches_s", "outside batches"))
    ]  # fmt: skip
    rows += [
        {"label": f"{topic.split('-')[1]} topic, {master}: driver peak RSS",
         "candidate": m["driver_peak_rss_mib"], "unit": "MiB"}
        for topic, by_master in measured.items() for master, m in by_master.items()
    ]  # fmt: skip
    rows[1]["target"] = f">= {TARGET_SKEWED}x"
    rows[1]["pass"] = bool(skewed_ratio and skewed_ratio >= TARGET_SKEWED)
    return Result(
        name=NAME,
        quick=quick,
        parameters=size | {"masters": list(MASTERS)},
        metric="events/s with local[2] ÷ local[1]",
        unit="events/s",
        better="higher",
        baseline={"label": "local[1]", "value": even["local[1]"]["events_per_s"], **even["local[1]"]},
        candidate={
            "label": "local[2]",
            "value": even["local[2]"]["events_per_s"],
            **even["local[2]"],
            "skewed": skewed,
        },
        ratio=even_ratio,
        target=f">= {TARGET}x",
        passed=bool(even_ratio and skewed_ratio and even_ratio >= TARGET and skewed_ratio >= TARGET_SKEWED),
        rows=rows,
        details={"skewed_ratio": skewed_ratio},
        notes=["Each run on a fresh lake; the Spark session start is excluded (the caught-up record)."],
    )
