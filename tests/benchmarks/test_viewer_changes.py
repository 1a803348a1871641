"""The keyed engine's JVM operator `ViewerChanges` (app/pulse/engine/java) against the driver's own
arithmetic: after every micro-batch, its window changes summed over viewers equal `gold.window_stats` and
the per-type counts, and its session changes applied in order equal `gold.sessionize`, over the distinct
events delivered so far.

Two kinds of scenario, over two Kafka partitions. Shuffled: events of 14 minutes in random order, with
duplicates within and across batches, late events that merge sessions, leaves, same-instant ties, gaps
over 300 s and the midnight UTC crossing, all within the 15-minute horizon. Streaming: 40 minutes of
heartbeats in event-time order with up to 90 s of delay, against a 3-minute horizon, so the operator
drops held events and keeps open sessions as summaries, batch after batch; one record arrives older
than the watermark and must be left to the slow path, not counted, as must redeliveries that come
after the watermark passed them. The same with a checkpoint reset in the middle: the new query starts
from an initial state built from the events so far."""

from __future__ import annotations

import json
import os
import random
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pulse.transforms import gold
from tests.benchmarks.jvm_child import run_with_operators

T0 = int(datetime(2026, 12, 5, 23, 57, tzinfo=UTC).timestamp()) * 1_000_000
KINDS = ("join", "heartbeat", "heartbeat", "message", "message", "like", "share", "leave")
BATCHES = 4


def on_partitions(batches: list[list[dict[str, Any]]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """The batches' records, each on one of two Kafka partitions at the next offset there."""
    offsets = [0, 0]
    delivered = []
    for batch in batches:
        out = []
        for record in batch:
            partition = rng.randrange(2)
            out.append(record | {"partition": partition, "offset": offsets[partition]})
            offsets[partition] += 1
        delivered.append(out)
    return delivered


def scenario(seed: int) -> list[list[dict[str, Any]]]:
    """Batches of delivered records (event_id, event, user_id, video_id, t, partition, offset), in
    delivery order: later batches carry late events and copies of earlier records."""
    rng = random.Random(seed)
    events = [
        {
            "event_id": f"e{seed}-{n}",
            "event": rng.choice(KINDS),
            "user_id": f"user_{rng.randrange(6)}",
            "video_id": f"video_{rng.randrange(2)}",
            # Whole seconds, few of them: ties at one instant are common; a quiet stretch over 300 s
            # after the first 6 minutes splits sessions.
            "t": T0 + rng.choice([*range(0, 360, 7), *range(700, 820, 11)]) * 1_000_000,
        }
        for n in range(160)
    ]
    rng.shuffle(events)  # arrival order is not event-time order: late events
    cut = sorted(rng.sample(range(1, len(events)), BATCHES - 1))
    batches = [events[a:b] for a, b in zip([0, *cut], [*cut, len(events)], strict=True)]
    delivered = []
    for number, batch in enumerate(batches):
        records = list(batch)
        earlier = [e for b in batches[: number + 1] for e in b]
        records += [dict(rng.choice(earlier)) for _ in range(len(batch) // 8)]  # redeliveries
        rng.shuffle(records)
        delivered.append(records)
    return on_partitions(delivered, rng)


STREAM_HORIZON_S = 180


# A viewer of the streaming scenarios who leaves for good after 8 minutes: the operator's timer must
# clear its state once the watermark passes its last event by the horizon and the session gap.
QUIET = "user_6"


def streaming(seed: int) -> list[list[dict[str, Any]]]:
    """40 minutes of 6 viewers on 2 videos delivered a minute at a time, each event up to 90 s late:
    heartbeats every 20-40 s, chat, likes, leaves and rejoins, and quiet spells of over 300 s; and a
    seventh viewer (`QUIET`) for the first 8 minutes only. The last batch also carries a record from 20
    minutes before (`too_late`), older than the watermark."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for viewer in range(7):
        t = rng.randrange(0, 60)
        while t < (8 if f"user_{viewer}" == QUIET else 40) * 60:
            kind = rng.choice(("heartbeat",) * 10 + ("message", "message", "like", "share", "leave"))
            events.append({"event_id": f"s{seed}-{len(events)}", "event": kind, "user_id": f"user_{viewer}",
                           "video_id": f"video_{viewer % 2}", "t": T0 + t * 1_000_000})  # fmt: skip
            t += rng.choice((0, 20, 30, 40)) if rng.random() > 0.03 else rng.randrange(310, 500)
    arrival = [(e["t"] + rng.randrange(0, 90_000_000), e) for e in events]
    batches: list[list[dict[str, Any]]] = [[] for _ in range(42)]
    for at, event in arrival:
        batches[min((at - T0) // 60_000_000, 41)].append(event)
    for number in range(1, len(batches)):
        batches[number] += [dict(rng.choice(batches[number - 1])) for _ in range(2) if batches[number - 1]]
    batches[-1].append(
        dict(events[0], event_id="too-late", t=events[-1]["t"] - 20 * 60_000_000, too_late=True)
    )
    return on_partitions(batches, rng)


# name: (the delivered batches, the operator's horizon in seconds, the batch a checkpoint reset precedes)
SCENARIOS = {f"shuffled-{seed}": (lambda seed=seed: scenario(seed), 15 * 60, None) for seed in (1, 2, 3)} | {
    "streaming-1": (lambda: streaming(1), STREAM_HORIZON_S, None),
    "streaming-reset-2": (lambda: streaming(2), STREAM_HORIZON_S, 20),
}


def distinct(batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The events the batches deliver, each id once (the first by Kafka coordinates within a batch, and
    the earliest batch), without the records that come too late to be counted."""
    seen: dict[str, dict[str, Any]] = {}
    for batch in batches:
        for record in sorted(batch, key=lambda r: (r["partition"], r["offset"])):
            if not record.get("too_late"):
                seen.setdefault(record["event_id"], record)
    return list(seen.values())


def expected(batches: list[list[dict[str, Any]]]) -> list[dict[tuple[Any, ...], tuple[Any, ...]]]:
    """After each batch, over the distinct events so far, computed by the driver's functions: per
    (video, window) the activity figures, per (video, window, type) the count, and per (user, video,
    start) the session."""
    out = []
    for number in range(1, len(batches) + 1):
        seen = distinct(batches[:number])
        frame = pd.DataFrame(seen)
        stats = gold.window_stats(frame, gold.touched_windows(frame))
        cells: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for row in stats.itertuples():
            figures = (row.event_count, row.message_count, row.like_count, row.active_viewers,
                       row.concurrent_viewers)  # fmt: skip
            if any(figures):
                cells[row.video_id, int(row.window_start), None] = tuple(int(f) for f in figures)
        for (video, window, kind), count in Counter(
            (r["video_id"], r["t"] // gold.MINUTE_US * gold.MINUTE_US, r["event"]) for r in seen
        ).items():
            cells[video, window, kind] = (count, 0, 0, 0, 0)
        for session in gold.sessionize(gold.as_segments(frame)).itertuples():
            held = (int(session.end), int(session.events), int(session.messages), bool(session.leave))
            cells[session.user_id, session.video_id, int(session.start)] = held
        out.append(cells)
    return out


def initial_state(records: list[dict[str, Any]], horizon_s: int) -> tuple[list[dict[str, Any]], int]:
    """What a reset's operator starts from, built from the distinct events so far as the pipeline would
    from its tables: the floor the operator itself would have reached, each viewer's events from it on,
    and the sessions before it that a later event could still extend, as segments."""
    frame = pd.DataFrame(records)
    watermark = int(frame["t"].max()) - horizon_s * 1_000_000
    floor = watermark // gold.MINUTE_US * gold.MINUTE_US - gold.MINUTE_US
    blank = dict.fromkeys(("event_id", "event", "t", "start", "end", "events", "messages", "leave"))
    rows = [
        blank
        | {"kind": "event", "event_id": r["event_id"], "event": r["event"], "t": int(r["t"])}
        | {"user_id": r["user_id"], "video_id": r["video_id"]}
        for r in records
        if r["t"] >= floor
    ]
    older = frame[frame["t"] < floor]
    for session in gold.sessionize(gold.as_segments(older)).itertuples():
        if session.end >= floor - gold.GAP_US:
            summary = {"start": int(session.start), "end": int(session.end), "events": int(session.events),
                       "messages": int(session.messages), "leave": bool(session.leave)}  # fmt: skip
            rows.append(blank | summary | {"kind": "segment", "user_id": session.user_id,
                                           "video_id": session.video_id})  # fmt: skip
    return rows, floor


INITIAL = (
    "user_id string, video_id string, kind string, event_id string, event string, t long, start long, "
    "end long, events long, messages long, leave boolean"
)


def run_operator(root: Path) -> dict[str, Any]:
    """In this process (the child): every scenario's batches through the operator, its emitted rows and
    the events it holds at the end. A scenario with a reset runs its first batches in one query, then
    the rest in a new one (a new checkpoint) that starts from `initial_state`."""
    from benchmarks.keyed_state import STATE_CONF, viewer_changes
    from pulse.spark import get_spark

    spark = get_spark("pulse-tests-viewer-changes")
    for key, value in STATE_CONF.items():
        spark.conf.set(key, value)
    emitted: dict[str, Any] = {}
    for name, (batches, horizon_s, reset_at) in SCENARIOS.items():
        delivered = batches()
        parts = (
            [(0, delivered)]
            if reset_at is None
            else [(0, delivered[:reset_at]), (reset_at, delivered[reset_at:])]
        )
        rows: list[list[Any]] = []
        for first, part in parts:
            source = root / f"{name}-{first}"
            source.mkdir()
            for number, batch in enumerate(part):
                path = source / f"{number}.json"
                path.write_text("\n".join(json.dumps(r) for r in batch))
                # The file source takes files oldest first: a second apart, the batches keep their order.
                os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number))
            parsed = (
                spark.readStream.schema(
                    "event_id string, event string, user_id string, video_id string, t long, "
                    "partition int, offset long"
                )
                .option("maxFilesPerTrigger", 1)
                .json(str(source))
            )
            initial, floor = None, None
            if first:
                records, floor = initial_state(distinct(delivered[:first]), horizon_s)
                initial = spark.createDataFrame(records, INITIAL)

            def collect(frame: Any, batch_id: int, first: int = first, rows: list[list[Any]] = rows) -> None:
                rows.extend([first + batch_id, *row] for row in frame.collect())

            checkpoint = root / f"checkpoint-{name}-{first}"
            query = (
                viewer_changes(parsed, horizon_s, initial, floor)
                .writeStream.foreachBatch(collect)
                .option("checkpointLocation", str(checkpoint))
                .trigger(availableNow=True)
                .start()
            )
            query.awaitTermination(300)

        # The events the operator holds at the end, and its timers, read back with Spark's state reader.
        def state(option: str, value: str, checkpoint: Path = checkpoint) -> Any:
            return spark.read.format("statestore").option(option, value).load(str(checkpoint))

        held, segments = state("stateVarName", "events"), state("stateVarName", "segments")
        timers = state("readRegisteredTimers", "true")
        emitted[name] = {
            "rows": rows,
            "held": held.count(),
            "quiet": held.where(f"key.user_id = '{QUIET}'").count()
            + segments.where(f"key.user_id = '{QUIET}'").count(),
            "viewers": held.select("key.user_id").distinct().count(),
            "timers": [row.asDict(recursive=True) for row in timers.collect()],
        }
    spark.stop()
    return emitted


@pytest.mark.e2e
def test_viewer_changes_follow_the_driver_windows_and_sessions_after_every_batch(
    tmp_path: Path, jars_dir: Path
) -> None:
    emitted = run_with_operators("tests.benchmarks.test_viewer_changes", tmp_path, jars_dir)
    for name, (batches, horizon_s, reset_at) in SCENARIOS.items():
        rows, delivered = emitted[name]["rows"], batches()
        assert {row[0] for row in rows} <= set(range(len(delivered))), f"{name}: one micro-batch per file"
        sums: dict[tuple[Any, ...], list[int]] = {}
        sessions: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for batch_id, want in enumerate(expected(delivered)):
            for _, kind, video, user, start, end, event, *figures, leave in (
                r for r in rows if r[0] == batch_id
            ):
                if kind == "late":
                    continue
                if kind == "gone":
                    assert sessions.pop((user, video, start), None) is not None, f"{name}: {user} {start}"
                elif kind == "session":
                    sessions[user, video, start] = (end, figures[0], figures[1], leave)
                else:
                    cell = sums.setdefault((video, start, event), [0] * 5)
                    for i, figure in enumerate(figures):
                        cell[i] += figure
            got = {key: tuple(cell) for key, cell in sums.items() if any(cell)} | sessions
            assert got == want, f"{name}, after batch {batch_id}"
        # A record older than the watermark is not counted (`got == want`): Spark drops it before the
        # operator, or the operator hands it back as late (those between Spark's cut and the window the
        # operator counts from). The only ones it may hand back here are redeliveries of events that were
        # counted when they first came.
        first_seen = {r["event_id"]: n for n, batch in reversed(list(enumerate(delivered))) for r in batch}
        handed_back = {r[6]: r[0] for r in rows if r[1] == "late"}
        assert all(first_seen[e] < n for e, n in handed_back.items()), handed_back
        if reset_at is not None:
            # The reset must matter: some session began before the floor and was extended after it.
            segments = initial_state(distinct(delivered[:reset_at]), horizon_s)[0]
            final = expected(delivered)[-1]
            starts = {
                (r["user_id"], r["video_id"], r["start"]): r["end"]
                for r in segments
                if r["kind"] == "segment"
            }
            assert any(final.get(key, (0,))[0] > end for key, end in starts.items()), f"{name}: {starts}"
        if name.startswith("streaming"):
            # It holds only the last few minutes: the horizon, the window before it and up to a batch.
            last = max(r["t"] for batch in delivered for r in batch)
            recent = {r["event_id"] for b in delivered for r in b if r["t"] >= last - 6 * 60_000_000}
            held = emitted[name]["held"]
            assert 0 < held <= len(recent), f"{name}: {held} events held, {len(recent)} in the last 6 min"
            # The viewer who left after 8 minutes is cleared by its timer; the others hold one timer
            # each, which no batch moved.
            assert emitted[name]["quiet"] == 0, f"{name}: {QUIET} still holds state"
            timers = emitted[name]["timers"]
            assert len(timers) == emitted[name]["viewers"], f"{name}: {timers}"


if __name__ == "__main__":
    print(json.dumps(run_operator(Path(sys.argv[1]))))
