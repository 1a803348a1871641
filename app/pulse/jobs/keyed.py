"""The keyed engine (`PULSE_ENGINE=keyed`): Gold's per-viewer work in Spark tasks, its state in Spark's.

`pulse pipeline all` reads Kafka once and checks each record once, in the query: the checked records are
partitioned by viewer (user_id, video_id), and two branches read that one exchange. The records
themselves, which the batch writes to Bronze, Silver and quarantine as the driver engine does; and
`ViewerChanges` (`pulse.engine`), a JVM operator grouped by the same columns, which skips the rejected
records and keeps its state in Spark's state store, checkpointed with the query. Per micro-batch the
operator emits each viewer's change to the per-minute figures and its new, changed and merged-away
sessions. One Spark job brings those rows to the driver with the checked records; the driver sums the
former per (video, window) over viewers, adds the sums to the window cells (`gold.WindowCells`) and
commits the touched Gold rows.

What the operator cannot hold exactly goes through the driver's path from Silver instead, for that batch
(its "suspects", `MedallionWriter._fold_keyed`), and the operator's state is then rebuilt from the lake:

- events older than the window the operator counts from: the watermark's window (the newest event's
  minute end less `PULSE_RECENT_MINUTES`), or after a rebuild the floor its state starts from;
- events Silver held before this batch read them (a batch replayed after a failure, or the first batch
  after a rebuild that re-reads records Bronze missed): the operator's state may already hold them.

A rebuild moves the checkpoint aside and starts again after what Bronze holds, with each viewer's state
built from Silver and Gold (`initial_state`). A marker in the checkpoint asks for it, written before the
batch's Gold commits, so a crash in between is rebuilt too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pulse import engine, io
from pulse.jobs.recent import RecentState
from pulse.tables import BRONZE_EVENTS_RAW, SILVER_EVENTS, SILVER_QUARANTINE
from pulse.transforms import gold
from pulse.transforms.silver import BRONZE_PREFIX, check_events, checked_rows
from pulse_core.semantics import SESSION_GAP_S
from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.pipeline")
MINUTE_US = 60_000_000
GAP_US = SESSION_GAP_S * 1_000_000
# The change's kind on the operator's rows of the query's one output (null on the raw records).
KIND = "_change"
# True on the raw records, false on the operator's rows.
RAW = "_is_record"
# Files the keyed engine keeps in its checkpoint folder, beside Spark's.
FLOOR_FILE = "pulse-keyed-floor.json"
REBUILD_FILE = "pulse-keyed-rebuild"
# The layout of the operator's state: its key and its input. A checkpoint without this file, or with
# another layout in it, is moved aside and its state rebuilt (`reformat`). 2: keyed by the (user_id,
# video_id) columns of the checked records, which the batch shares (1, unmarked: a string key over a
# second check of the records).
FORMAT_FILE = "pulse-keyed-format"
FORMAT = "2"
BRONZE_COLUMNS = tuple(BRONZE_EVENTS_RAW.fieldNames())
# The checked records' columns the driver reads: Silver's and the quarantine's (`split_checked_rows`).
CHECKED_COLUMNS = tuple(dict.fromkeys([*SILVER_EVENTS.fieldNames(), *SILVER_QUARANTINE.fieldNames()]))
# The operator's change columns, as `gold.ACTIVITY` names them.
ACTIVITY_OF_CHANGE = {
    "active": "active_viewers",
    "concurrent": "concurrent_viewers",
    "messages": "message_count",
    "likes": "like_count",
    "events": "event_count",
}


# Spark settings of the keyed engine's query: `transformWithState` needs RocksDB, and changelog
# checkpointing commits each batch's changes instead of a snapshot (off by default in open-source Spark).
# Not counting the rows of every state store saves a pass over them each batch.
STATE_CONF = {
    "spark.sql.streaming.stateStore.providerClass": (
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
    ),
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    "spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false",
}


# The query's shuffle partitions: the operator's state partitions, fixed in the checkpoint at its first run.
PARTITIONS_CONF = "spark.sql.shuffle.partitions"


def horizon_us(settings: PulseSettings) -> int:
    """The operator's lateness horizon: `PULSE_RECENT_MINUTES`, in µs (whole minutes, so the watermark
    stays minute-aligned)."""
    return settings.recent_minutes * MINUTE_US


def window_of(t: int) -> int:
    return t - t % MINUTE_US


def switch_engine(spark: SparkSession, checkpoint: str, keyed: bool) -> bool:
    """Move aside a checkpoint the other engine wrote (its query has another plan: the keyed one has
    state), to `_switched/<time>/` beside it. The query then starts after what Bronze holds, as after a
    reset, so every table stays exact (docs/pipeline.md, "Resets and job modes"). True when it did."""
    if not io.has_checkpoint(spark, checkpoint):
        return False
    # A keyed query that stopped before its first batch committed state is taken for the driver's: moved
    # aside too, and started after Bronze as well, which is exact either way.
    stateful = io.path_exists(spark, f"{checkpoint}/state")
    if stateful == keyed:
        return False
    was, now = ("keyed", "driver") if stateful else ("driver", "keyed")
    target = _move_aside(spark, checkpoint, "_switched")
    log.warning(
        f"the pipeline checkpoint was written by PULSE_ENGINE={was}, and this run asks for {now}: it "
        f"moved to {target}, and the query starts after what Bronze holds (every table stays exact)"
    )
    return True


def reformat(spark: SparkSession, checkpoint: str) -> bool:
    """Move aside a keyed checkpoint whose state has another layout than this operator's (`FORMAT`), to
    `_reformatted/<time>/` beside it: Spark cannot read state under another key, so the state is rebuilt
    from the lake, and the query starts after what Bronze holds, as after an engine switch (every table
    stays exact). True when it did."""
    if not io.path_exists(spark, f"{checkpoint}/state"):
        return False
    held = (io.read_small_file(spark, f"{checkpoint}/{FORMAT_FILE}") or "1").strip()
    if held == FORMAT:
        return False
    target = _move_aside(spark, checkpoint, "_reformatted")
    log.warning(
        f"keyed engine: the checkpoint holds the operator's state in layout {held}, and this version "
        f"keeps it in layout {FORMAT}: it moved to {target}, and the state is rebuilt from the lake (the "
        "query starts after what Bronze holds; every table stays exact)"
    )
    return True


def checkpoint_partitions(spark: SparkSession, checkpoint: str) -> int | None:
    """The state partitions a keyed checkpoint holds (one folder each under its operator's), or None
    before its first batch committed state."""
    count = sum(name.isdigit() for name in io.list_names(spark, f"{checkpoint}/state/0"))
    return count or None


def repartition(spark: SparkSession, settings: PulseSettings, checkpoint: str) -> bool:
    """Move aside a keyed checkpoint whose state partitions are not `PULSE_STATE_PARTITIONS`, to
    `_repartitioned/<time>/` beside it: Spark fixes a stateful query's partitions at its first run and
    cannot change them, so the state is rebuilt from the lake in the partitions asked for, and the query
    starts after what Bronze holds, as after an engine switch (every table stays exact). True when it did."""
    wanted = settings.state_partitions
    held = checkpoint_partitions(spark, checkpoint) if wanted is not None else None
    if held is None or held == wanted:
        return False
    target = _move_aside(spark, checkpoint, "_repartitioned")
    log.warning(
        f"keyed engine: PULSE_STATE_PARTITIONS={wanted}, and the checkpoint held its state in {held} "
        f"partitions: it moved to {target}, and the state is rebuilt from the lake in {wanted} (the query "
        "starts after what Bronze holds; every table stays exact)"
    )
    return True


def state_partitions(spark: SparkSession, settings: PulseSettings, checkpoint: str) -> int:
    """The state partitions this run's query gets: its checkpoint's, which Spark froze at the first run
    (`repartition` has moved aside one that `PULSE_STATE_PARTITIONS` does not match), else
    `PULSE_STATE_PARTITIONS`, else the session's shuffle partitions."""
    held = checkpoint_partitions(spark, checkpoint)
    if held is not None:
        return held
    return settings.state_partitions or int(spark.conf.get(PARTITIONS_CONF) or 1)


def checked_input(records: DataFrame) -> DataFrame:
    """The records checked once, as both the batch and the operator read them: `checked_rows` with every
    Bronze column beside (`BRONZE_PREFIX`), and the valid events' time in µs (`t`, null on a rejected
    record)."""
    t = F.when(F.col("_reason").isNull(), F.unix_micros("_event_time")).alias("t")
    # Without `ingested_at` under its own name (`checked_records` takes Bronze's): the optimizer drops
    # that alias in the operator's branch and keeps it in the other, and the two exchanges would differ.
    return checked_rows(check_events(records), BRONZE_COLUMNS, (t,)).drop("ingested_at")


@dataclass(frozen=True)
class KeyedRun:
    """What a keyed engine's batch needs of its query: the checkpoint (its watermark, the rebuild
    marker), and the floor a rebuilt state started from (None: none)."""

    checkpoint: str
    floor_us: int | None


@dataclass(frozen=True)
class EngineStart:
    """How the operator starts: from `initial` (None: its checkpoint, or an empty lake), whose held events
    begin at `floor_us`, below which it counts nothing until its watermark passes."""

    floor_us: int | None
    initial: DataFrame | None


def with_changes(
    records: DataFrame, settings: PulseSettings, start: EngineStart, partitions: int
) -> DataFrame:
    """The query's one output: the checked records (`KIND` null) and the operator's changes (`KIND`
    set), from one read and one check of each micro-batch (`engine.keyed`): the records are partitioned
    by viewer into the operator's `partitions`, and both branches read that one exchange. Sets the
    session's state store to `STATE_CONF`, which the query's checkpoint then records."""
    for key, value in STATE_CONF.items():
        records.sparkSession.conf.set(key, value)
    keyed_rows = engine.keyed(checked_input(records), horizon_us(settings), partitions)
    changes = engine.grouped(keyed_rows, GAP_US, horizon_us(settings), start.initial, start.floor_us)
    raw = keyed_rows.withColumn(KIND, F.lit(None).cast("string")).withColumn(RAW, F.lit(True))
    changes = changes.withColumnRenamed("kind", KIND).withColumn(RAW, F.lit(False))
    return raw.unionByName(changes, allowMissingColumns=True)


def raw_records(batch: DataFrame) -> DataFrame:
    """The Bronze rows of a micro-batch of `with_changes` (for Spark's Bronze append, over a cached
    batch: foreachBatch hands the batch over as one dataset, which a filter does not split)."""
    bronze = (F.col(BRONZE_PREFIX + name).alias(name) for name in BRONZE_COLUMNS)
    return batch.where(F.col(RAW)).select(*bronze)


def checked_records(batch: DataFrame, bronze_columns: tuple[str, ...]) -> DataFrame:
    """A micro-batch of `with_changes` as the driver reads it: the checked records' Silver and quarantine
    columns, `bronze_columns` (named with `BRONZE_PREFIX`), and the operator's rows (`carried`). The
    check ran in the query, once."""
    checked = (
        F.col(BRONZE_PREFIX + name).alias(name) if name == "ingested_at" else F.col(name)
        for name in CHECKED_COLUMNS
    )
    bronze = (F.col(BRONZE_PREFIX + name) for name in bronze_columns)
    return batch.select(*checked, *bronze, *carried())


def state_floor(settings: PulseSettings) -> Callable[[datetime], datetime]:
    """Where the driver's state (`RecentState`) begins for Silver's newest event time: the session gap
    before the operator's floor (`floor_of`), so that `initial_state` can summarise the sessions the
    floor cuts, and the window cells hold every window the operator counts."""
    return lambda newest: _instant(floor_of(_micros(newest), settings) - GAP_US)


def floor_of(newest_us: int, settings: PulseSettings) -> int:
    """The operator's floor for a newest event time: the window before its watermark's (the newest
    minute's end less the horizon), as the operator itself keeps (`ViewerChanges.keep`)."""
    return window_of(newest_us) - horizon_us(settings)


def start_state(
    spark: SparkSession, settings: PulseSettings, checkpoint: str, state: RecentState
) -> EngineStart:
    """How the operator starts for this run: from its checkpoint, or (a fresh one) from the lake. The
    driver's state then keeps only its events' ids (`RecentState.release_events`): the operator holds
    the events."""
    try:
        return _start_state(spark, settings, checkpoint, state)
    finally:
        state.release_events()


def _start_state(
    spark: SparkSession, settings: PulseSettings, checkpoint: str, state: RecentState
) -> EngineStart:
    if io.has_checkpoint(spark, checkpoint):
        text = io.read_small_file(spark, f"{checkpoint}/{FLOOR_FILE}")
        floor = json.loads(text)["floor_us"] if text else None
        return EngineStart(floor, None)
    io.write_small_file(spark, f"{checkpoint}/{FORMAT_FILE}", FORMAT)
    if state.newest is None:
        return EngineStart(None, None)
    floor = floor_of(_micros(state.newest), settings)
    initial = initial_state(state, floor)
    io.write_small_file(spark, f"{checkpoint}/{FLOOR_FILE}", json.dumps({"floor_us": floor}))
    rows = spark.createDataFrame(initial.to_pandas(), schema=INITIAL_SCHEMA)
    log.info(
        f"keyed engine: a new state from the lake, {initial.num_rows:,} rows from "
        f"{_instant(floor).isoformat()} on"
    )
    return EngineStart(floor, rows)


INITIAL_SCHEMA = (
    "user_id string, video_id string, kind string, event_id string, event string, t long, start long, "
    "end long, events long, messages long, leave boolean"
)


def initial_state(state: RecentState, floor: int) -> pa.Table:
    """Each viewer's state as `ViewerChanges` takes it (`INITIAL_SCHEMA`): its Silver events from `floor`
    on, and as summary segments the part before `floor` of its Gold sessions that a later event could
    still extend (ending within the session gap of `floor`).

    `state` must hold Silver from `floor` less the gap on (`state_floor`): the last event before `floor`
    of a session that crosses it is there. A session's part before `floor` is the session less its events
    from `floor` on; it ends at that last event, and not with a leave (a leave would have ended it).
    Two sessions meet at one instant only through leaves: the first leave there (by event id) ends the
    earlier one, and each further leave is a session of its own.
    """
    events = gold.events_frame(state.events)
    held = events[events["t"] >= floor]
    sessions = gold.sessions_frame(state.sessions)
    sessions = sessions[sessions["end"] >= floor - GAP_US]
    joined = sessions.reset_index(names="session").merge(events, on=["user_id", "video_id"])
    joined = joined[(joined["t"] >= joined["start"]) & (joined["t"] <= joined["end"])]
    # At the instant a session ends with a leave, a second leave (by event id) starts the next session.
    leave_at_end = (joined["t"] == joined["end"]) & (joined["event"] == "leave") & joined["leave"]
    first_leave = joined[leave_at_end].groupby("session")["event_id"].transform("min")
    joined = joined[~leave_at_end | (joined["event_id"] == first_leave.reindex(joined.index))]
    after = joined["t"] >= floor
    per_session = pd.DataFrame(
        {
            "session": joined["session"],
            "held": after.astype("int64"),
            "held_messages": (after & (joined["event"] == "message")).astype("int64"),
            "before_end": joined["t"].where(~after),
        }
    ).groupby("session")
    counts = per_session.agg({"held": "sum", "held_messages": "sum", "before_end": "max"})
    parts = sessions.join(counts, how="left").fillna({"held": 0, "held_messages": 0})
    parts = parts[parts["events"] > parts["held"]]
    crossing = parts["end"] >= floor
    segments = pd.DataFrame(
        {
            "user_id": parts["user_id"],
            "video_id": parts["video_id"],
            "kind": "segment",
            "start": parts["start"],
            "end": np.where(crossing, parts["before_end"].fillna(parts["start"]), parts["end"]).astype(
                "int64"
            ),
            "events": (parts["events"] - parts["held"]).astype("int64"),
            "messages": (parts["messages"] - parts["held_messages"]).astype("int64"),
            "leave": np.where(crossing, False, parts["leave"]).astype(bool),
        }
    )
    rows = pd.DataFrame(
        {
            "user_id": held["user_id"],
            "video_id": held["video_id"],
            "kind": "event",
            "event_id": held["event_id"],
            "event": held["event"],
            "t": held["t"].astype("int64"),
        }
    )
    out = pd.concat([rows, segments], ignore_index=True)
    schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("video_id", pa.string()),
            ("kind", pa.string()),
            ("event_id", pa.string()),
            ("event", pa.string()),
            ("t", pa.int64()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("events", pa.int64()),
            ("messages", pa.int64()),
            ("leave", pa.bool_()),
        ]
    )
    return pa.Table.from_pandas(out.reindex(columns=schema.names), schema=schema, preserve_index=False)


def batch_watermark_us(spark: SparkSession, checkpoint: str, batch_id: int) -> int:
    """The event-time watermark Spark runs micro-batch `batch_id` with, in µs: from its offsets entry,
    written before the batch runs (0 before any)."""
    text = io.read_small_file(spark, f"{checkpoint}/offsets/{batch_id}")
    if text is None:
        raise RuntimeError(f"no offsets entry for micro-batch {batch_id} in {checkpoint}")
    metadata = json.loads(text.splitlines()[1])
    return int(metadata.get("batchWatermarkMs", 0)) * 1000


def counted_from(watermark_us: int, floor_us: int | None) -> int:
    """The first instant the operator counts in a batch: its watermark's window, and after a rebuild not
    before the window after the floor its state starts from (`ViewerChanges.handleInputRows`)."""
    counted = window_of(watermark_us)
    return max(counted, floor_us + MINUTE_US) if floor_us is not None else counted


CHANGE_COLUMNS = (KIND, "video_id", "user_id", "start", "end", "event", *ACTIVITY_OF_CHANGE, "leave")
# The operator's columns travel beside the checked records' in one row set, under names of their own.
CHANGE_PREFIX = "change_"


def carried() -> tuple[Column, ...]:
    """The columns that carry the operator's rows beside the checked records (`split_rows` reads them)."""
    return (F.col(RAW), *(F.col(name).alias(CHANGE_PREFIX + name) for name in CHANGE_COLUMNS))


def split_rows(rows: pa.Table) -> tuple[pa.Table, pd.DataFrame]:
    """A batch's rows on the driver (checked records, with `carried` columns) as (the checked records,
    the operator's rows)."""
    raw = pc.fill_null(rows[RAW], False)
    names = [name for name in rows.column_names if name != RAW and not name.startswith(CHANGE_PREFIX)]
    change_names = [CHANGE_PREFIX + name for name in CHANGE_COLUMNS]
    records = pc.sum(raw).as_py() or 0
    if pc.all(raw.slice(0, records)).as_py() is not False:
        # The union's records come first (`with_changes`): both parts are slices, and no column of a
        # batch's records (122 MB per 200,000 in a catch-up batch) is copied.
        checked, changes = rows.slice(0, records).select(names), rows.slice(records).select(change_names)
    else:
        checked, changes = rows.select(names).filter(raw), rows.select(change_names).filter(pc.invert(raw))
    frame: pd.DataFrame = changes.rename_columns(list(CHANGE_COLUMNS)).to_pandas()
    return checked, frame


def sum_changes(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The operator's rows as (window changes summed per (video, window), per-type counts summed per
    (video, window, type), session rows): the second aggregation, over viewers, of the per-viewer changes."""
    sums = list(ACTIVITY_OF_CHANGE)
    activity = rows[rows[KIND] == "activity"].groupby(["video_id", "start"], as_index=False)[sums].sum()
    types = rows[rows[KIND] == "type"].groupby(["video_id", "start", "event"], as_index=False)[sums].sum()
    return activity, types, rows[rows[KIND].isin(["session", "gone"])]


def apply_windows(cells: gold.WindowCells, activity: pd.DataFrame, types: pd.DataFrame) -> None:
    """Add the summed window changes (`sum_changes`) to the cells."""
    stats = pd.DataFrame(
        {
            "window_start": activity["start"].astype("int64"),
            "video_id": activity["video_id"],
            **{name: activity[change].astype("int64") for change, name in ACTIVITY_OF_CHANGE.items()},
        }
    )
    counts = types.rename(columns={"start": "window_start", "events": "event_count"})
    cells.add_sums(stats, counts[["video_id", "window_start", "event", "event_count"]])


def touched_rows(
    cells: gold.WindowCells,
    activity: pd.DataFrame,
    types: pd.DataFrame,
    skip_activity: set[tuple[str, int]],
    skip_types: set[tuple[str, int]],
) -> dict[str, pa.Table]:
    """The Gold rows of the cells the changes touched, less the (video, window) pairs a recount from
    Silver writes in the same batch (`skip_activity`, `skip_types`)."""
    keys = sorted(
        {(v, int(s)) for v, s in zip(activity["video_id"], activity["start"], strict=True)} - skip_activity
    )
    held = [(video, start, cells.activity[(video, start)]) for video, start in keys]
    held = [row for row in held if row[2][-1] > 0]  # a window without events of its own has no row
    figures = np.array([row[2] for row in held], dtype="int64").reshape(len(held), len(gold.ACTIVITY))
    stats = pd.DataFrame(
        {
            "window_start": np.array([row[1] for row in held], dtype="int64"),
            "video_id": np.array([row[0] for row in held], dtype=object),
            **{name: figures[:, i] for i, name in enumerate(gold.ACTIVITY)},
        }
    )
    typed = sorted({(v, int(s)) for v, s in zip(types["video_id"], types["start"], strict=True)} - skip_types)
    by_type = [
        (video, start, event, count)
        for video, start in typed
        for event, count in sorted(cells.by_type.get((video, start), {}).items())
    ]
    starts = np.array([row[1] for row in by_type], dtype="int64")
    return {
        "video_activity": gold.activity_table(stats),
        "events_by_type": pa.table(
            {
                "window_start": gold.timestamps(starts),
                "window_end": gold.timestamps(starts + MINUTE_US),
                "video_id": pa.array([row[0] for row in by_type], pa.string()),
                "event": pa.array([row[2] for row in by_type], pa.string()),
                "event_count": pa.array([row[3] for row in by_type], pa.int64()),
            }
        ),
    }


def session_rows(sessions: pd.DataFrame, skip: set[tuple[str, str]]) -> tuple[pa.Table, pa.Table]:
    """The operator's session rows as (`gold.user_sessions` rows to upsert, rows to delete), less the
    viewers in `skip` (those rebuilt from Silver in the same batch)."""
    viewers = list(zip(sessions["user_id"], sessions["video_id"], strict=True))
    keep = np.array([viewer not in skip for viewer in viewers], dtype=bool)
    sessions = sessions[keep] if len(sessions) else sessions
    upsert = sessions[sessions[KIND] == "session"]
    gone = sessions[sessions[KIND] == "gone"]
    frame = pd.DataFrame(
        {
            "user_id": upsert["user_id"],
            "video_id": upsert["video_id"],
            "start": upsert["start"].astype("int64"),
            "end": upsert["end"].astype("int64"),
            "events": upsert["events"].astype("int64"),
            "messages": upsert["messages"].astype("int64"),
            "leave": upsert["leave"].astype(bool),
        }
    )
    stale = pd.DataFrame(
        {
            "user_id": gone["user_id"],
            "video_id": gone["video_id"],
            "start": gone["start"].astype("int64"),
            "end": gone["start"].astype("int64"),
            "events": 0,
            "messages": 0,
            "leave": False,
        }
    )
    return gold.sessions_table(frame), gold.sessions_table(stale)


def request_rebuild(spark: SparkSession, checkpoint: str, why: str) -> None:
    """Mark the checkpoint for a rebuild, before the batch that needs it commits Gold."""
    io.write_small_file(spark, f"{checkpoint}/{REBUILD_FILE}", why)


def rebuild_asked(spark: SparkSession, checkpoint: str) -> bool:
    """True when the checkpoint is marked for a rebuild."""
    return io.path_exists(spark, f"{checkpoint}/{REBUILD_FILE}")


def rebuild_if_asked(spark: SparkSession, checkpoint: str) -> bool:
    """Move a checkpoint marked for a rebuild aside (to `_rebuilt/<time>/` beside it), so the query starts
    over with its state built from the lake. True when it did."""
    why = io.read_small_file(spark, f"{checkpoint}/{REBUILD_FILE}")
    if why is None:
        return False
    target = _move_aside(spark, checkpoint, "_rebuilt")
    log.info(f"keyed engine: rebuilding the operator's state from the lake ({why.strip()}); the old "
             f"checkpoint moved to {target}")  # fmt: skip
    return True


def _move_aside(spark: SparkSession, checkpoint: str, folder: str) -> str:
    """Move a checkpoint to `<folder>/<time>/<name>` beside it; returns where."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    parent, name = checkpoint.rstrip("/").rsplit("/", 1)
    target = f"{parent}/{folder}/{stamp}/{name}"
    io.move_tree(spark, checkpoint, target)
    return target


def _micros(instant: datetime) -> int:
    return int(gold.micros(pa.array([instant], pa.timestamp("us", tz="UTC")))[0])


def _instant(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
