"""Gold fixture and read timings for the dashboard benchmark, each in its own process.

`python -m benchmarks.gold_reads fixture --lake L` writes the 24 h x 20 videos fixture;
`python -m benchmarks.gold_reads deltalake|spark --lake L --start ISO` times reading the last 24 h of
each Gold table into pandas: deltalake through the dashboard's own `read_gold`, or a Spark batch read
(`get_spark`, same filter, `toPandas`). One untimed warm-up read, then the median of `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from pulse_core.catalogue import GOLD

if TYPE_CHECKING:
    from pulse_dashboard.gold import GoldTable


def _rows(table: GoldTable, start: datetime) -> int:
    from pulse_dashboard.gold import read_gold

    return len(read_gold(table, start=start))


def _timed(read: Callable[[], int], repeats: int) -> dict[str, float | int]:
    rows = read()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        rows = read()
        times.append(time.perf_counter() - began)
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4), "rows": rows}


def deltalake_reads(lake: str, start: datetime, repeats: int) -> dict[str, object]:
    from pulse_dashboard.gold import GoldTable

    out: dict[str, object] = {}
    for name in GOLD:
        table = GoldTable(name, f"{lake}/gold/{name}", {})
        out[name] = _timed(partial(_rows, table, start), repeats)
    return out


def spark_reads(lake: str, start: datetime, repeats: int) -> dict[str, object]:
    from pyspark.sql import functions as F

    from pulse.spark import get_spark
    from pulse_core.settings import load_settings

    began = time.perf_counter()
    spark = get_spark("pulse-bench-dashboard-read", load_settings())
    out: dict[str, object] = {"session_s": round(time.perf_counter() - began, 2)}
    literal = F.lit(start.replace(tzinfo=None)).cast("timestamp")  # the session time zone is UTC
    for name in GOLD:
        path = f"{lake}/gold/{name}"

        def read(path: str = path, name: str = name) -> int:
            frame = spark.read.format("delta").load(path).where(F.col(GOLD[name].time_bounds[0]) >= literal)
            return len(frame.toPandas())

        out[name] = _timed(read, repeats)
    spark.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fixture", "deltalake", "spark"])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--start", help="ISO-8601 lower bound of the read (UTC)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.mode == "fixture":
        from testkit.gold_fixture import write_gold_fixture

        began = time.perf_counter()
        fixture = write_gold_fixture(args.lake, now=datetime.now(UTC), hours=24, videos=20, seed=42)
        print(
            json.dumps(
                {
                    "rows": fixture.rows,
                    "first_window": fixture.first_window.isoformat(),
                    "last_window": fixture.last_window.isoformat(),
                    "seconds": round(time.perf_counter() - began, 1),
                }
            )
        )
        return
    start = datetime.fromisoformat(args.start)
    reads = deltalake_reads if args.mode == "deltalake" else spark_reads
    print(json.dumps(reads(args.lake, start, args.repeats)))


if __name__ == "__main__":
    main()
