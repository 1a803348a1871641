"""Benchmark 10: what a per-viewer keyed operator costs in Spark tasks, and whether it scales out here.

The design in docs/scale.md moves the per-viewer work (dedupe, sessions, each viewer's share of the
per-minute windows) into a `transformWithState` operator keyed by (user_id, video_id), its state in
RocksDB. Python state calls are round trips to the JVM, and a keyed operator pays Python per key, not per
batch: this measures that price before the pipeline is rebuilt on it.

Over the `scaleout` benchmark's even topic (20 videos, 300k events, 7,868 viewers), each run is one
availableNow query in a JVM of its own, `maxOffsetsPerTrigger` records a batch:

- **stateless**: Kafka → parse → per (video, minute) counts in `foreachBatch`: the read, the parse and
  one shuffle, no state;
- **rows** / **pandas**: the same with a keyed operator between them (`transformWithState`, or
  `transformWithStateInPandas`), keyed by viewer (user_id, video_id). Per key and batch it reads the
  viewer's held event ids (list state), keeps the batch's new events and appends them, extends the
  viewer's session (value state), and emits the viewer's share of each minute it touched. The
  `foreachBatch` sums the shares per (video, minute).
- **buckets**: keyed by (video_id, a bucket of its viewers), `BUCKETS` a video, with pandas: per key
  and batch it reads the bucket's events of the minutes the batch touches (one Arrow value per minute
  in a map state), keeps the new ones and rewrites those minutes, extends its viewers' sessions (one
  Arrow value), and emits per minute the new events and the bucket's active viewers. Python then pays
  per bucket, not per viewer.
- **jvm**: the `rows` operator written in Java (`benchmarks/jvm/pulse/bench/ViewerShares.java`,
  compiled by `benchmarks.jvm_build`): the same state, the same shares, and no Python per key.
- **viewer**: Pulse's real per-viewer work in Java (`ViewerChanges.java`): per viewer, the held
  events (id, time, type), the batch's new ones by Kafka coordinates, for each window they touch the
  change of the viewer's share (events, messages, likes, active, present at the window's end), the
  new events per type, and the viewer's new, changed and gone sessions;
  tests/benchmarks/test_viewer_changes.py holds them to `gold.window_stats` and `gold.sessionize`.

`PULSE_BENCH_KEYED_MODES` (comma-separated; `stateless`, the baseline, always runs) runs only some
shapes.

Each run checks its own answer: the shares' events sum to the topic's distinct event ids. The figures:
events/s per mode with `local[1]` and `local[2]` (alternated over the rounds, ratio of the medians), the
keyed operator's time over the stateless run's, and its cost per key and batch on one slot.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

from benchmarks import jvm_build
from benchmarks.harness import broker, log, run_json_child, workspace
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.scaleout import fill_topic
from benchmarks.spread import compare
from pulse_core.semantics import SESSION_GAP_S
from pulse_core.settings import PulseSettings

NAME = "keyed_state"
MODES = ("stateless", "rows", "pandas", "buckets", "jvm", "viewer")
JVM_MODES = ("jvm", "viewer")
MASTERS = ("local[1]", "local[2]")
FULL: dict[str, Any] = {"events": 300_000, "batch": 50_000, "rounds": 3}
QUICK: dict[str, Any] = {"events": 6_000, "batch": 2_000, "rounds": 1}
TOPIC = "keyed-state"
# The same shuffle partitions whatever the slots: a stateful query freezes them at its first batch.
PARTITIONS = 8
STATE_CONF = {
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
    "spark.sql.shuffle.partitions": str(PARTITIONS),
}
GAP_US = SESSION_GAP_S * 1_000_000
# The `viewer` operator's lateness horizon: the pipeline's default recent state (PULSE_RECENT_MINUTES).
HORIZON_S = PulseSettings.model_fields["recent_minutes"].default * 60
# Viewer buckets per video in the `buckets` mode: a batch has at most videos times buckets keys.
BUCKETS = 16
MINUTE_US = 60_000_000
SHARE_COLUMNS = ("video_id", "minute", "events", "messages", "likes", "active")
SHARES = "video_id string, minute long, events long, messages long, likes long, active long"


def _share_rows(key: Any, events: list[tuple[str, int, str]]) -> list[tuple[Any, ...]]:
    """A viewer's share of each minute its new events touch: (video, minute, events, messages, likes, 1)."""
    cells: dict[int, list[int]] = {}
    for _, t, kind in events:
        cell = cells.setdefault(t // MINUTE_US * MINUTE_US, [0, 0, 0])
        cell[0] += 1
        cell[1] += kind == "chat"
        cell[2] += kind == "like"
    return [(key[1], minute, n, chats, likes, 1) for minute, (n, chats, likes) in cells.items()]


def _processor(rows_api: bool):
    import pandas as pd
    from pyspark.sql import Row
    from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle

    class ViewerShares(StatefulProcessor):
        """Per viewer: dedupe against the held ids, extend the session, emit the touched minutes' shares."""

        def init(self, handle: StatefulProcessorHandle) -> None:
            self.ids = handle.getListState("ids", "event_id string, t long")
            self.session = handle.getValueState("session", "start long, end long")

        def handleInputRows(self, key: Any, rows: Iterator[Any], timerValues: Any) -> Iterator[Any]:  # noqa: N802, N803
            if rows_api:
                batch = [(row.event_id, row.t, row.event) for row in rows]
            else:
                batch = [
                    event
                    for frame in rows
                    for event in zip(frame["event_id"], frame["t"].tolist(), frame["event"], strict=True)
                ]
            held = {event_id for event_id, _ in self.ids.get()}
            new: dict[str, tuple[str, int, str]] = {}
            for event in sorted(batch, key=lambda e: e[1]):
                if event[0] not in held and event[0] not in new:
                    new[event[0]] = event
            if not new:
                return
            events = list(new.values())
            self.ids.appendList([(event_id, t) for event_id, t, _ in events])
            session = self.session.get()
            start, end = session if session else (events[0][1], events[0][1])
            for _, t, _ in events:
                if t - end > GAP_US:
                    start = t
                end = max(end, t)
            self.session.update((start, end))
            shares = _share_rows(key, events)
            if rows_api:
                names = ("video_id", "minute", "events", "messages", "likes", "active")
                yield from (Row(**dict(zip(names, share, strict=True))) for share in shares)
            else:
                yield pd.DataFrame(
                    shares, columns=["video_id", "minute", "events", "messages", "likes", "active"]
                )

        def close(self) -> None:
            pass

    return ViewerShares()


def _bucket_processor():
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle

    def packed(table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    def unpacked(state: tuple[bytes] | None) -> pa.Table | None:
        return pa.ipc.open_stream(state[0]).read_all() if state else None

    class BucketShares(StatefulProcessor):
        """Per (video, bucket of viewers): the bucket's events kept per minute as Arrow, one map entry a
        minute, and its viewers' sessions as one Arrow value; a batch reads and rewrites only the minutes
        it touches (an event_id always carries the same event time), and works on columns, not rows."""

        def init(self, handle: StatefulProcessorHandle) -> None:
            self.minutes = handle.getMapState("minutes", "minute long", "events binary")
            self.sessions = handle.getValueState("sessions", "sessions binary")

        def handleInputRows(self, key: Any, rows: Iterator[Any], timerValues: Any) -> Iterator[Any]:  # noqa: N802, N803
            batch = pd.concat(list(rows), ignore_index=True).sort_values("t", kind="stable")
            batch = batch.drop_duplicates("event_id")[["event_id", "user_id", "t", "event"]]
            minute = batch["t"].to_numpy() // MINUTE_US * MINUTE_US
            shares, fresh = [], []
            for at in np.unique(minute).tolist():
                part = batch[minute == at]
                held = unpacked(self.minutes.getValue((at,)))
                if held is not None:
                    part = part[~part["event_id"].isin(held["event_id"].to_numpy(zero_copy_only=False))]
                if part.empty:
                    continue
                added = pa.Table.from_pandas(part, preserve_index=False)
                whole = pa.concat_tables([held, added.cast(held.schema)]) if held is not None else added
                self.minutes.updateValue((at,), (packed(whole),))
                kinds = part["event"].to_numpy()
                active = len(pc.unique(whole["user_id"]))
                chats, likes = int((kinds == "chat").sum()), int((kinds == "like").sum())
                shares.append((key[0], at, len(part), chats, likes, active))
                fresh.append(part)
            if not fresh:
                return
            new = pd.concat(fresh).groupby("user_id")["t"].agg(["min", "max"])
            held_sessions = unpacked(self.sessions.get())
            sessions = (
                held_sessions.to_pandas().set_index("user_id")
                if held_sessions is not None
                else pd.DataFrame({"start": pd.Series(dtype="int64"), "end": pd.Series(dtype="int64")})
            )
            both = sessions.join(new, how="outer")
            restart = both["end"].isna() | (both["min"] - both["end"] > GAP_US)
            both["start"] = both["start"].where(~restart, both["min"])
            both["end"] = np.fmax(both["end"], both["max"])
            kept = both[["start", "end"]].astype("int64").reset_index(names="user_id")
            self.sessions.update((packed(pa.Table.from_pandas(kept, preserve_index=False)),))
            yield pd.DataFrame(shares, columns=list(SHARE_COLUMNS))

        def close(self) -> None:
            pass

    return BucketShares()


def viewer_changes(
    parsed: Any, horizon_s: int = HORIZON_S, initial: Any = None, floor_us: int | None = None
) -> Any:
    """`ViewerChanges` (Java) over parsed events with their Kafka `partition` and `offset`: per viewer
    and micro-batch, the change of its share of each window its new events touch, their counts per
    type, its sessions that changed, and the events older than the watermark (the newest event time
    less `horizon_s`) it left to the slow path (`ViewerChanges.CHANGES` columns; `kind` tells which).
    After a checkpoint reset, `initial` (the rows `ViewerChanges.changes` documents) and `floor_us`,
    where its events begin, start the state. Needs `jvm_build.spark_conf()` in the session."""
    from pyspark.sql import DataFrame

    spark = parsed.sparkSession
    operator = spark._jvm.pulse.engine.ViewerChanges
    horizon_us = horizon_s * 1_000_000
    if initial is None:
        return DataFrame(operator.changes(parsed._jdf, GAP_US, horizon_us), spark)
    return DataFrame(operator.changes(parsed._jdf, initial._jdf, GAP_US, horizon_us, floor_us), spark)


def viewer_shares(parsed: Any, mode: str) -> Any:
    """Each viewer's share of the minutes its new events touch (`SHARES` columns) from parsed events
    (event_id, event, user_id, video_id, t in µs): through the keyed operator (`rows`, `pandas`), or
    one row per event with no state (`stateless`, which neither dedupes nor holds anything)."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    if mode == "jvm":
        spark = parsed.sparkSession
        return DataFrame(spark._jvm.pulse.bench.ViewerShares.shares(parsed._jdf, GAP_US), spark)
    if mode == "viewer":
        return viewer_changes(parsed).withColumnRenamed("start", "minute")
    if mode == "stateless":
        return parsed.select(
            "video_id",
            (F.col("t") - F.col("t") % MINUTE_US).alias("minute"),
            F.lit(1).cast("long").alias("events"),
            (F.col("event") == "chat").cast("long").alias("messages"),
            (F.col("event") == "like").cast("long").alias("likes"),
            F.lit(1).cast("long").alias("active"),
        )
    if mode == "buckets":
        bucketed = parsed.withColumn("bucket", F.pmod(F.hash("user_id"), F.lit(BUCKETS)))
        grouped = bucketed.groupBy("video_id", "bucket")
        return grouped.transformWithStateInPandas(_bucket_processor(), SHARES, "Update", "None")
    grouped = parsed.groupBy("user_id", "video_id")
    apply = grouped.transformWithState if mode == "rows" else grouped.transformWithStateInPandas
    return apply(_processor(mode == "rows"), SHARES, "Update", "None")


def child(mode: str, batch: int, checkpoint: str) -> dict[str, Any]:
    """One availableNow run over the topic: its seconds, batches and the events its shares count."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    from benchmarks.spark_copy import kafka_records
    from pulse.spark import get_spark
    from pulse_core.settings import load_settings

    settings = load_settings()
    spark = get_spark(f"pulse-bench-keyed-{mode}", settings)
    for key, value in STATE_CONF.items():
        spark.conf.set(key, value)
    wire = StructType(
        [StructField(n, StringType()) for n in ("event_id", "timestamp", "event", "user_id", "video_id")]
    )
    parsed = (
        kafka_records(spark, settings, "earliest", max_offsets=batch)
        .select(F.from_json(F.col("value").cast("string"), wire).alias("e"), "partition", "offset")
        .select("e.*", "partition", "offset")
        .withColumn("t", F.unix_micros(F.to_timestamp("timestamp")))
        .drop("timestamp")
    )
    shares = viewer_shares(parsed, mode)
    totals = {"events": 0, "cells": 0}

    def fold(frame: Any, _: int) -> None:
        if "kind" in frame.columns:  # `viewer`: its per-type rows count each new event once
            frame = frame.where(F.col("kind") == "type")
        cells = frame.groupBy("video_id", "minute").agg(F.sum("events").alias("events")).collect()
        totals["cells"] += len(cells)
        totals["events"] += sum(row["events"] for row in cells)

    began = time.monotonic()
    query = (
        shares.writeStream.foreachBatch(fold)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    seconds = time.monotonic() - began
    batches = [p for p in query.recentProgress if p["numInputRows"]]
    keys = [sum(op.get("numRowsUpdated", 0) for op in p.get("stateOperators", [])) for p in batches]
    spark.stop()
    return {
        "mode": mode,
        "seconds": round(seconds, 3),
        "events": totals["events"],
        "cells": totals["cells"],
        "batch_s": [p["durationMs"]["triggerExecution"] / 1000 for p in batches],
        "state_rows_updated": keys,
    }


def chosen_modes() -> tuple[str, ...]:
    """The shapes `PULSE_BENCH_KEYED_MODES` names (all when unset), in `MODES` order, with `stateless`."""
    raw = os.environ.get("PULSE_BENCH_KEYED_MODES", "")
    asked = {mode.strip() for mode in raw.split(",") if mode.strip()}
    if unknown := asked - set(MODES):
        raise SystemExit(
            f"PULSE_BENCH_KEYED_MODES: unknown {sorted(unknown)}; choose from {', '.join(MODES)}"
        )
    return tuple(mode for mode in MODES if not asked or mode == "stateless" or mode in asked)


def run(quick: bool) -> Result:
    """Rounds of every mode on `local[1]` then `local[2]`, each in a fresh JVM over a fresh checkpoint."""
    size = QUICK if quick else FULL
    modes = chosen_modes()
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {(m, s): [] for m in modes for s in MASTERS}
    with workspace(NAME) as ws, broker(ws):
        # The simulator's events carry distinct ids: what is delivered is what the shares must count.
        expected = fill_topic(ws, TOPIC, size["events"], skewed=False)
        for round_no in range(size["rounds"]):
            for mode in modes:
                for master in MASTERS:
                    tag = f"{mode}-{master[-2]}-{round_no}"
                    log(f"keyed_state round {round_no + 1}/{size['rounds']}: {mode} on {master}")
                    env = ws.env(PULSE_KAFKA_TOPIC=TOPIC, PULSE_SPARK_MASTER=master)
                    if mode in JVM_MODES:
                        env["PULSE_SPARK_CONF"] = jvm_build.spark_conf()
                    args = ["--child", mode, "--batch", str(size["batch"]),
                            "--checkpoint", str(ws.home / f"checkpoint-{tag}")]  # fmt: skip
                    result = run_json_child("benchmarks.keyed_state", args, env, timeout=1800)
                    if result["events"] != expected:
                        counted = f"{mode} on {master} counted {result['events']:,} events"
                        raise AssertionError(f"{counted}, the topic holds {expected:,}")
                    if len(result["batch_s"]) < size["events"] // size["batch"]:
                        raise AssertionError(f"{mode} on {master} ran {len(result['batch_s'])} batches")
                    runs[mode, master].append(result)
    rate = {key: [size["events"] / r["seconds"] for r in rs] for key, rs in runs.items()}
    verdicts = {mode: compare(rate[mode, MASTERS[0]], rate[mode, MASTERS[1]], "higher") for mode in modes}
    rows = [
        compared_rounds(f"{mode}: events/s, local[2] ÷ local[1]", verdicts[mode], "events/s")
        for mode in modes
    ]
    for mode in modes[1:]:
        for master in MASTERS:
            keyed = statistics.median(r["seconds"] for r in runs[mode, master])
            plain = statistics.median(r["seconds"] for r in runs["stateless", master])
            keys = statistics.median(sum(r["state_rows_updated"]) for r in runs[mode, master])
            label = f"{mode} on {master}: seconds ÷ stateless; state rows updated; µs added per event"
            added_us = (keyed - plain) / size["events"] * 1e6
            candidate = f"{keyed / plain:.2f}x ({keyed:.1f} s vs {plain:.1f} s); {keys:,.0f}; {added_us:.0f}"
            rows.append({"label": label, "candidate": candidate, "unit": "ratio"})
    # The headline is Pulse's own operator when it ran, else the last shape that did.
    lead = "viewer" if "viewer" in modes else modes[-1]
    return Result(
        name=NAME,
        quick=quick,
        parameters=size
        | {
            "topic": "scaleout even (20 videos)",
            "shuffle_partitions": PARTITIONS,
            "state_conf": STATE_CONF,
            "order": "per round: each mode on local[1], local[2]",
            "modes": list(modes),
        },
        metric=f"keyed operator ({lead}): events/s, local[2] ÷ local[1]",
        unit="events/s",
        better="higher",
        **headline(
            verdicts[lead],
            {"label": f"{lead} on local[1]", "runs": runs[lead, MASTERS[0]]},
            {"label": f"{lead} on local[2]", "runs": runs[lead, MASTERS[1]]},
        ),
        target="report (issue 22: what the keyed design costs per key, and whether it scales here)",
        passed=None,
        rows=rows,
        details={f"{mode} {master}": rs for (mode, master), rs in runs.items()},
        notes=[
            "Each run a fresh JVM and checkpoint; every run's shares must count every distinct event once.",
            "The held ids never expire here: a live operator would drop them past the horizon with a timer.",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=MODES, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--checkpoint", required=True)
    args = parser.parse_args()
    print(json.dumps(child(args.child, args.batch, args.checkpoint)))


if __name__ == "__main__":
    main()
