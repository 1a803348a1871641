"""Whole-table Gold in Spark tasks (`pulse.transforms.gold_tables`, what `pulse backfill` runs): how it
spreads over task slots, with events over 20 videos and with 90% of them on one video.

`python -m benchmarks.gold_tables [--events N] [--rounds R]` runs itself once per Spark master
(`local[1]`, then `local[2]`, alternating for R rounds), each in its own process: a seeded hour of events
is cached in Spark, then all three Gold tables are computed and written to Spark's `noop` sink. It prints
one JSON line: per topic shape and master, the seconds of each round and their median, and the median
ratio `local[1] ÷ local[2]` (above 1: the second slot helped).

It is a measurement to run alone on a quiet machine, not part of `make bench` (no target).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa

MASTERS = ("local[1]", "local[2]")
SHAPES = {"even": 20, "one video at 90%": 1}
KINDS = np.array(["join", "heartbeat", "heartbeat", "message", "like", "share", "leave"])


def events(count: int, videos: int, seed: int = 1) -> pa.Table:
    """An hour of Silver-shaped events over `videos` videos (with 1: 90% on one video, the rest on 19)."""
    rng = np.random.default_rng(seed)
    start = 1_780_000_000_000_000
    times = start + np.sort(rng.integers(0, 3600 * 1_000_000, count))
    users = rng.integers(0, count // 20 + 1, count)
    if videos == 1:
        video = np.where(rng.random(count) < 0.9, 0, rng.integers(1, 20, count))
    else:
        video = rng.integers(0, videos, count)
    return pa.table(
        {
            "event_id": pa.array([f"e{i}" for i in range(count)]),
            "event_time": pa.array(times, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "event": pa.array(KINDS[rng.integers(0, len(KINDS), count)]),
            "user_id": pa.array([f"u{u}" for u in users]),
            "video_id": pa.array([f"v{v}" for v in video]),
        }
    )


def _measure(count: int, videos: int) -> float:
    """In this process (one master): seconds to compute and write all three Gold tables."""
    from pulse.spark import get_spark
    from pulse.transforms.gold_tables import events_by_type, sessionize, video_activity

    spark = get_spark()
    frame = spark.createDataFrame(events(count, videos)).repartition(8).cache()
    frame.count()

    def once() -> float:
        began = time.monotonic()
        for gold in (events_by_type(frame), video_activity(frame), sessionize(frame)):
            gold.write.format("noop").mode("overwrite").save()
        return time.monotonic() - began

    once()  # warm: the Python workers and the code paths
    return once()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", nargs=2, type=int, help=argparse.SUPPRESS)  # events, videos
    args = parser.parse_args()
    if args.measure:
        print(json.dumps({"seconds": _measure(*args.measure)}))
        return
    seconds: dict[str, dict[str, list[float]]] = {shape: {m: [] for m in MASTERS} for shape in SHAPES}
    for _ in range(args.rounds):
        for shape, videos in SHAPES.items():
            for master in MASTERS:
                env = os.environ | {"PULSE_SPARK_MASTER": master}
                command = [
                    sys.executable,
                    "-m",
                    "benchmarks.gold_tables",
                    "--measure",
                    str(args.events),
                    str(videos),
                ]
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                seconds[shape][master].append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
                print(f"{shape}, {master}: {seconds[shape][master][-1]:.2f} s", file=sys.stderr, flush=True)
    summary = {
        shape: {
            **{m: {"rounds": [round(s, 2) for s in runs], "median": round(statistics.median(runs), 2)}
               for m, runs in by_master.items()},
            "ratio": round(
                statistics.median(by_master["local[1]"]) / statistics.median(by_master["local[2]"]), 2
            ),
        }
        for shape, by_master in seconds.items()
    }  # fmt: skip
    print(json.dumps({"events": args.events, "rounds": args.rounds, "shapes": summary}))


if __name__ == "__main__":
    main()
