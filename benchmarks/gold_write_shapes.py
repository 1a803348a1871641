"""The shape of a Spark Gold write: one batch's change of one Gold table, committed by Spark in each shape.

`python -m benchmarks.gold_write_shapes [--runs N] [--quick]` builds, per shape, an `events_by_type`
table of 20,000 rows (20 videos x 200 minutes x 5 event types, 20 appends in time order), then applies a
1,000-row change of its last 10 minutes (8 minutes updated, 2 new) again and again, round-robin across
the shapes on one warm session, and prints one JSON line: per shape the median seconds and Spark jobs.

Shapes (all one atomic commit):
- `merge`: what `PULSE_GOLD_WRITER=spark` runs today (`io.merge_upsert`, source not materialized).
- `replace_where`: an overwrite with `replaceWhere` of the change's minutes, from rows that hold the
  range's whole new content (a window table's range can be recomputed whole from Silver's events).
- `read_replace_where`: the same when the range's other rows must be read first (Spark reads the range
  to the driver, the change replaces rows by key, the result overwrites the range).
- `append`: a plain append of the change: the floor of any Spark commit (not a correct Gold write).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pyarrow as pa
from pyspark.sql import SparkSession

from pulse import io
from pulse.jobs.medallion import MATERIALIZE_SOURCE_CONF
from pulse.spark import get_spark
from pulse.tables import spark_schema
from pulse_core.catalogue import GOLD_EVENTS_BY_TYPE
from pulse_core.settings import PulseSettings

TABLE = GOLD_EVENTS_BY_TYPE
T0 = datetime(2026, 12, 3, tzinfo=UTC)
VIDEOS, KINDS, MINUTES = 20, ("join", "leave", "heartbeat", "message", "like"), 200


def _rows(minutes: range, count: int) -> pa.Table:
    cells = [(m, v, k) for m in minutes for v in range(VIDEOS) for k in KINDS]
    starts = [T0 + timedelta(minutes=m) for m, _, _ in cells]
    return pa.table(
        {
            "window_start": starts,
            "window_end": [s + timedelta(minutes=1) for s in starts],
            "video_id": [f"video_{v}" for _, v, _ in cells],
            "event": [k for _, _, k in cells],
            "event_count": [count] * len(cells),
        },
        schema=TABLE.arrow_schema(),
    )


def _jobs(spark: SparkSession, group: str, action: Callable[[], object]) -> tuple[float, int]:
    """Seconds and Spark jobs `action` took."""
    context = spark.sparkContext
    context.setJobGroup(group, group)
    began = time.perf_counter()
    try:
        action()
    finally:
        seconds = time.perf_counter() - began
        context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    return seconds, len(context.statusTracker().getJobIdsForGroup(group))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8, help="measured runs per shape, after 2 warm-ups")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 2 runs: a smoke test")
    args = parser.parse_args()
    warmups, runs = (1, 2) if args.quick else (2, args.runs)
    home = Path(os.environ.get("PULSE_HOME", ".pulse"))
    spark = get_spark("pulse-bench-gold-write", PulseSettings(home=home))
    spark.conf.set(MATERIALIZE_SOURCE_CONF, "none")  # as the pipeline's MedallionWriter sets it
    schema = spark_schema(TABLE)
    change_minutes = range(MINUTES - 8, MINUTES + 2)
    prune = io.TimeRange("window_start", T0 + timedelta(minutes=change_minutes.start),
                         T0 + timedelta(minutes=change_minutes.stop))  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="gold-write-shapes-"))
    paths: dict[str, str] = {}

    def merge(path: str, change: pa.Table) -> None:
        io.merge_upsert(spark, path, spark.createDataFrame(change, schema=schema), TABLE.keys, prune)

    def overwrite(path: str, whole: pa.Table) -> None:
        frame = spark.createDataFrame(whole, schema=schema)
        frame.write.format("delta").mode("overwrite").option("replaceWhere", prune.sql()).save(path)

    def read_overwrite(path: str, change: pa.Table) -> None:
        current = io.read_delta_range(spark, path, prune).toArrow().cast(change.schema)
        kept = current.join(change.select(list(TABLE.keys)), list(TABLE.keys), join_type="left anti")
        overwrite(path, pa.concat_tables([kept.select(change.column_names), change]))

    def append(path: str, change: pa.Table) -> None:
        io.append(spark.createDataFrame(change, schema=schema), path, "bench")

    shapes: dict[str, Callable[[str, pa.Table], None]] = {
        "merge": merge,
        "replace_where": overwrite,  # the change is the range's whole content here
        "read_replace_where": read_overwrite,
        "append": append,
    }
    for name in shapes:
        paths[name] = str(folder / name)
        io.ensure_delta_table(spark, paths[name], schema, properties=TABLE.properties)
        for chunk in range(0, MINUTES, MINUTES // 20):
            seed = spark.createDataFrame(_rows(range(chunk, chunk + 10), 1), schema=schema)
            io.append(seed, paths[name], "seed")
    figures: dict[str, list[tuple[float, int]]] = {name: [] for name in shapes}
    for run in range(warmups + runs):
        change = _rows(change_minutes, run + 2)
        for name, shape in shapes.items():
            measured = _jobs(spark, f"{name}-{run}", partial(shape, paths[name], change))
            if run >= warmups:
                figures[name].append(measured)
    result = {
        "runs": runs,
        "source_rows": 1000,
        "target_rows": VIDEOS * len(KINDS) * MINUTES,
        "load_1min": round(os.getloadavg()[0], 2),
        "shapes": {
            name: {
                "median_s": round(statistics.median(s for s, _ in values), 2),
                "min_s": round(min(s for s, _ in values), 2),
                "max_s": round(max(s for s, _ in values), 2),
                "median_jobs": statistics.median(j for _, j in values),
            }
            for name, values in figures.items()
        },
    }
    print(json.dumps(result))
    spark.stop()


if __name__ == "__main__":
    main()
