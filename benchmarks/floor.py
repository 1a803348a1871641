"""Benchmark 7: the floor of a stateful micro-batch on this machine, before any Pulse logic.

Issue 22 moves the per-event work into Spark's state store (`transformWithState`). A stateful Structured
Streaming batch pays a fixed cost whatever it holds: the shuffle to the state operator, the state
store's commit and the checkpoint. This measures that floor, under a live 200 events/s audience:

- **stateless**: Kafka → `foreachBatch` (one action over the batch), the shape Pulse runs today before
  its driver-side work;
- **stateful**: the same with a `transformWithStateInPandas` operator keyed by video between them (one
  value state per key, RocksDB with changelog checkpointing), the smallest shape the scale-out design
  needs;
- **stateful, row API**: the same with `transformWithState` (rows instead of pandas frames).

Each runs in its own JVM (`python -m benchmarks.floor --child MODE`) for the same measured window, the
modes in turn over the rounds; the headline is stateful ÷ stateless batch p50, of the medians of the rounds'
p50s (lower is better). It is a measurement, not a target: it says
how close to the 5 s produce→Gold promise a state-store design can get on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.harness import (
    broker,
    log,
    run_json_child,
    start_live_load,
    stop_process,
    workspace,
)
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.spread import compare
from benchmarks.stats import summary_stats

NAME = "floor"
MODES = ("stateless", "stateful", "stateful-rows")
# Five rounds of 24 s measured per mode: the 120 s a mode had in one piece before the rounds.
FULL: dict[str, Any] = {"rate": 200.0, "warmup_s": 20, "measure_s": 24, "rounds": 5}
QUICK: dict[str, Any] = {"rate": 200.0, "warmup_s": 20, "measure_s": 15, "rounds": 2}
STATE_CONF = {
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
}


def _processor(rows_api: bool):
    import pandas as pd
    from pyspark.sql import Row
    from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle

    class CountPerVideo(StatefulProcessor):
        """Counts a video's events in one value state: one state read and one write per key and batch."""

        def init(self, handle: StatefulProcessorHandle) -> None:
            self.count = handle.getValueState("count", "n long")

        def handleInputRows(self, key: Any, rows: Iterator[Any], timerValues: Any) -> Iterator[Any]:  # noqa: N802, N803
            held = self.count.get()
            seen = sum(1 for _ in rows) if rows_api else sum(len(frame) for frame in rows)
            total = (held[0] if held else 0) + seen
            self.count.update((total,))
            if rows_api:
                yield Row(video_id=key[0], n=total)
            else:
                yield pd.DataFrame({"video_id": [key[0]], "n": [total]})

        def close(self) -> None:
            pass

    return CountPerVideo()


def child(mode: str, warmup_s: float, measure_s: float, checkpoint: str) -> dict[str, Any]:
    """Run one query shape for `warmup_s + measure_s` and return its per-batch durations."""
    from benchmarks.spark_copy import kafka_records
    from pulse.spark import get_spark
    from pulse_core.settings import load_settings

    settings = load_settings()
    spark = get_spark(f"pulse-bench-floor-{mode}", settings)
    for key, value in STATE_CONF.items():
        spark.conf.set(key, value)
    records = kafka_records(spark, settings, "latest").selectExpr("CAST(key AS STRING) AS video_id", "value")
    if mode != "stateless":
        grouped = records.groupBy("video_id")
        apply = grouped.transformWithState if mode == "stateful-rows" else grouped.transformWithStateInPandas
        records = apply(_processor(mode == "stateful-rows"), "video_id string, n long", "Update", "None")

    def one_action(batch: Any, _: int) -> None:
        batch.count()

    query = (
        records.writeStream.foreachBatch(one_action)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime="1 second")
        .start()
    )
    measured_from = datetime.now(UTC) + timedelta(seconds=warmup_s)
    durations: list[float] = []
    seen: set[int] = set()
    deadline = time.monotonic() + warmup_s + measure_s
    while time.monotonic() < deadline:
        time.sleep(5)  # recentProgress keeps the last 100 batches only: collect as they come
        for progress in query.recentProgress:
            started = datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00"))
            if progress["batchId"] in seen or progress["numInputRows"] == 0 or started < measured_from:
                continue
            seen.add(progress["batchId"])
            durations.append(progress["durationMs"]["triggerExecution"] / 1000)
    query.stop()
    spark.stop()
    return {"mode": mode, "batches": len(durations), "batch_s": durations}


def run(quick: bool) -> Result:
    """Round after round, each query shape in its own JVM under the same live audience (A B C A B C …);
    each shape's batch p50 per round, their spread, and stateful ÷ stateless of the medians."""
    size = QUICK if quick else FULL
    measured: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with workspace(NAME) as ws, broker(ws):
        load = start_live_load(ws.env(), ws.home, size["rate"])
        try:
            for round_no in range(size["rounds"]):
                for mode in MODES:
                    log(
                        f"floor round {round_no + 1}/{size['rounds']}, {mode}: {size['warmup_s']} s warm-up, "
                        f"then {size['measure_s']} s measured"
                    )
                    checkpoint = str(ws.home / f"checkpoint-{mode}-{round_no}")
                    args = ["--child", mode, "--warmup-s", str(size["warmup_s"]),
                            "--measure-s", str(size["measure_s"]), "--checkpoint", checkpoint]  # fmt: skip
                    timeout = size["warmup_s"] + size["measure_s"] + 300
                    measured[mode].append(run_json_child("benchmarks.floor", args, ws.env(), timeout=timeout))
        finally:
            stop_process(load)
    pooled = {mode: summary_stats([s for r in measured[mode] for s in r["batch_s"]]) for mode in MODES}
    p50s = {mode: [statistics.median(r["batch_s"]) for r in measured[mode] if r["batch_s"]] for mode in MODES}
    verdicts = {
        mode: compare(p50s["stateless"], p50s[mode], "lower") for mode in MODES if mode != "stateless"
    }
    rows = [
        compared_rounds(f"{mode} ÷ stateless: batch p50 per round", verdict, "s")
        for mode, verdict in verdicts.items()
    ]
    rows += [
        {"label": f"{mode}: all rounds' batches, p50 / p95 (s), {s['count']} batches",
         "candidate": f"{s['p50']} / {s['p95']}", "unit": "s"}
        for mode, s in pooled.items()
    ]  # fmt: skip
    return Result(
        name=NAME,
        quick=quick,
        parameters=size
        | {"state_conf": STATE_CONF, "order": "per round: stateless, stateful, stateful-rows"},
        metric="stateful micro-batch p50 ÷ stateless p50",
        unit="s",
        better="lower",
        **headline(
            verdicts["stateful"],
            {"label": "stateless batch p50", "all_batches": pooled["stateless"]},
            {
                "label": "transformWithStateInPandas batch p50",
                "all_batches": pooled["stateful"],
                "stateful_rows": pooled["stateful-rows"],
            },
        ),
        target="report (issue 22: measure the floor first)",
        passed=None,
        rows=rows,
        details={"rounds": {mode: [r["batch_s"] for r in runs] for mode, runs in measured.items()}},
        notes=[
            "Each mode in its own JVM, the modes in turn round after round, under the same live audience; "
            "a round's figure is its batches' p50.",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=MODES, required=True)
    parser.add_argument("--warmup-s", type=float, required=True)
    parser.add_argument("--measure-s", type=float, required=True)
    parser.add_argument("--checkpoint", required=True)
    args = parser.parse_args()
    result = child(args.child, args.warmup_s, args.measure_s, args.checkpoint)
    result["p50"] = statistics.median(result["batch_s"]) if result["batch_s"] else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
