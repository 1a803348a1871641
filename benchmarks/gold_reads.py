"""Gold fixture and read timings for the dashboard benchmark, each in its own process.

`python -m benchmarks.gold_reads fixture --lake L` writes the 24 h x 20 videos fixture;
`python -m benchmarks.gold_reads deltalake|spark --lake L --start ISO` is one round: it times reading the
last 24 h of each Gold table into pandas, deltalake through the dashboard's own `read_gold`, or a Spark
batch read (`get_spark`, same filter, `toPandas`), after one untimed warm-up read.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pulse_core.catalogue import GOLD


def one_round(reader: str, lake: str, start: datetime) -> dict[str, Any]:
    """One round of a reader in a fresh process: each Gold table read once untimed, then once timed.

    A round is a process of its own so that neither reader runs beside the other's runtime (a Spark JVM
    idling in the same process would take CPU from deltalake's reads); Spark's session start is timed
    apart.
    """
    from pulse_core.settings import load_settings

    read: Callable[[str], int]
    out: dict[str, Any] = {}
    if reader == "deltalake":
        from pulse_dashboard.gold import GoldTable, read_gold

        def read(name: str) -> int:
            return len(read_gold(GoldTable(name, f"{lake}/gold/{name}", {}), start=start))

    else:
        from pyspark.sql import functions as F

        from pulse.spark import get_spark

        began = time.perf_counter()
        spark = get_spark("pulse-bench-dashboard-read", load_settings())
        out["session_s"] = round(time.perf_counter() - began, 2)
        literal = F.lit(start.replace(tzinfo=None)).cast("timestamp")  # the session time zone is UTC

        def read(name: str) -> int:
            frame = spark.read.format("delta").load(f"{lake}/gold/{name}")
            return len(frame.where(F.col(GOLD[name].time_bounds[0]) >= literal).toPandas())

    for name in GOLD:
        rows = read(name)
        began = time.perf_counter()
        read(name)
        out[name] = {"seconds": round(time.perf_counter() - began, 4), "rows": rows}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fixture", "deltalake", "spark"])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--start", help="ISO-8601 lower bound of the read (UTC)")
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
    print(json.dumps(one_round(args.mode, args.lake, datetime.fromisoformat(args.start))))


if __name__ == "__main__":
    main()
