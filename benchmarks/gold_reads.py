"""Gold fixture and read timings for the dashboard benchmark, each in its own process.

`python -m benchmarks.gold_reads fixture --lake L` writes the 24 h x 20 videos fixture;
`python -m benchmarks.gold_reads alternate --lake L --start ISO --rounds N` times reading the last 24 h of
each Gold table into pandas, deltalake through the dashboard's own `read_gold` and a Spark batch read
(`get_spark`, same filter, `toPandas`) in turn: one untimed warm-up read each, then N rounds.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pulse_core.catalogue import GOLD


def alternating_reads(lake: str, start: datetime, rounds: int) -> dict[str, Any]:
    """Each Gold table's last 24 h, read with deltalake then with Spark, round after round (A B A B …).

    The Spark session starts first (timed apart), so nothing forks after deltalake has been used; one
    untimed read each warms both up.
    """
    from pyspark.sql import functions as F

    from pulse.spark import get_spark
    from pulse_core.settings import load_settings
    from pulse_dashboard.gold import GoldTable, read_gold

    began = time.perf_counter()
    spark = get_spark("pulse-bench-dashboard-read", load_settings())
    session_s = round(time.perf_counter() - began, 2)
    literal = F.lit(start.replace(tzinfo=None)).cast("timestamp")  # the session time zone is UTC

    def with_deltalake(name: str) -> int:
        return len(read_gold(GoldTable(name, f"{lake}/gold/{name}", {}), start=start))

    def with_spark(name: str) -> int:
        frame = spark.read.format("delta").load(f"{lake}/gold/{name}")
        return len(frame.where(F.col(GOLD[name].time_bounds[0]) >= literal).toPandas())

    readers: dict[str, Callable[[str], int]] = {"deltalake": with_deltalake, "spark": with_spark}
    out: dict[str, Any] = {reader: {name: {"rounds_s": []} for name in GOLD} for reader in readers}
    for reader, read in readers.items():
        for name in GOLD:
            out[reader][name]["rows"] = read(name)
    for _ in range(rounds):
        for reader, read in readers.items():
            for name in GOLD:
                began = time.perf_counter()
                read(name)
                out[reader][name]["rounds_s"].append(round(time.perf_counter() - began, 4))
    spark.stop()
    out["totals_s"] = {
        reader: [
            round(sum(times), 4) for times in zip(*(out[reader][n]["rounds_s"] for n in GOLD), strict=True)
        ]
        for reader in readers
    }
    return out | {"session_s": session_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fixture", "alternate"])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--start", help="ISO-8601 lower bound of the read (UTC)")
    parser.add_argument("--rounds", type=int, default=5)
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
    print(json.dumps(alternating_reads(args.lake, datetime.fromisoformat(args.start), args.rounds)))


if __name__ == "__main__":
    main()
