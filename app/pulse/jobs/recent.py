"""What the pipeline keeps on the driver between micro-batches: recent Silver events and Gold sessions.

Reading Silver or Gold back from Delta costs every micro-batch a snapshot reconstruction and a scan per
read, about half a second each on two cores (docs/pipeline.md, "What a micro-batch costs"). Almost
every read a batch needs is of the last few minutes of event time, so the pipeline keeps exactly that
on the driver: every Silver event whose event time is at or after a *floor*, and every Gold session that
ended at or after the floor minus the session gap. A batch deduplicates and folds into Gold from here,
and only events older than the floor take the path through the tables.

The state is a cache, never a source of truth: it is loaded from the tables when the pipeline starts and
dropped when a batch fails, so it holds nothing the tables do not (a replayed batch finds its own events
already here, with its own Kafka coordinates, exactly as it would find them in Silver).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from pulse import io
from pulse.jobs.event_index import ABSENT, EventIndex, Hashes, id_hashes, viewer_hashes
from pulse.preflight import on_local_disk
from pulse.transforms import gold
from pulse_core import catalogue
from pulse_core.semantics import SESSION_GAP_S

log = logging.getLogger("pulse.pipeline")
EVENT_COLUMNS = ("event_id", "event_time", "event", "user_id", "video_id", "kafka_partition", "kafka_offset")
SESSION_KEYS = ("user_id", "video_id", "session_start")
GAP = timedelta(seconds=SESSION_GAP_S)
_TS = pa.timestamp("us", tz="UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(instant: datetime) -> pa.Scalar:
    """An instant as an Arrow scalar comparable with the state's timestamp columns."""
    return pa.scalar(instant, type=_TS)


def first_per_event_id(events: pa.Table) -> pa.Table:
    """One row per event_id, the first by (Kafka partition, offset): `transforms.silver.first_per_event_id`
    on an Arrow table. The rows kept stay in the batch's order, and a batch without copies is returned as
    it is: the keyed engine's records arrive grouped by viewer, and putting a whole batch back into Kafka
    order cost its driver more than any other step after the Spark job (docs/scale.md, session 22)."""
    # Hashing in pandas over one column: a Python set over the ids cost 0.4 s per 200,000 events.
    ids = events["event_id"].to_numpy(zero_copy_only=False)
    if not pd.Series(ids).duplicated().any():
        return events
    kafka_order = [("kafka_partition", "ascending"), ("kafka_offset", "ascending")]
    order = pc.sort_indices(events, kafka_order).to_numpy()
    keep = np.zeros(len(ids), dtype=bool)
    keep[order[~pd.Series(ids[order]).duplicated(keep="first").to_numpy()]] = True
    return events.filter(pa.array(keep, pa.bool_()))


class RecentState:
    """Silver events with event time ≥ `floor`, and Gold sessions that ended ≥ `floor` minus the session gap.

    `floor` None means the state holds everything (Silver was empty when it was loaded); after that the
    floor follows the newest event time minus the horizon, and what falls below it is dropped.
    """

    def __init__(
        self, horizon: timedelta, floor: datetime | None, events: pa.Table, sessions: pa.Table
    ) -> None:
        self.horizon = horizon
        self.floor = floor
        self.events = events.select(list(EVENT_COLUMNS))
        self.sessions = sessions
        # event_id -> its Kafka record as one int (`_coordinates`), time and viewer: 40 B an event
        # (`pulse.jobs.event_index`).
        self._records = EventIndex()
        self._index(self.events)
        self.newest: datetime | None = None
        if self.events.num_rows:
            self.newest = pc.max(self.events["event_time"]).as_py()
        # False once `release_events` dropped the events: the ids stay, for deduplication.
        self.holds_events = True
        # Gold's per-minute figures of the held windows, which each added event updates (`gold.WindowCells`).
        self.cells = gold.WindowCells.of(
            gold.events_frame(self.events), None if floor is None else _micros(floor)
        )
        # False when the keyed engine's operator, not each added event, changes the cells
        # (`pulse.jobs.keyed`): the state then only deduplicates, and serves the path through Silver.
        self.counts_cells = True

    @classmethod
    def load(
        cls,
        spark: SparkSession,
        silver_path: str,
        sessions_path: str,
        horizon: timedelta,
        with_deltalake: bool | None = None,
        floor_for: Callable[[datetime], datetime] | None = None,
    ) -> RecentState:
        """Read the state from Silver and Gold: the last `horizon` of event time before Silver's newest.

        A lake on local disk is read with deltalake (`with_deltalake`, by default): well under a
        second where Spark's reads cost 12-16 s at a pipeline's start. A cloud lake is read with Spark.
        """
        began = time.monotonic()
        if with_deltalake is None:
            with_deltalake = on_local_disk(silver_path)
        newest = io.newest_instant(spark, silver_path, "event_time", with_deltalake)
        floor = None
        if newest is not None:
            floor = floor_for(newest) if floor_for is not None else newest - horizon
        events = io.read_arrow(
            spark,
            silver_path,
            catalogue.SILVER_EVENTS.arrow_schema(EVENT_COLUMNS),
            io.TimeRange("event_time", floor) if floor is not None else None,
            with_deltalake,
        )
        sessions = io.read_arrow(
            spark,
            sessions_path,
            catalogue.GOLD_USER_SESSIONS.arrow_schema(),
            io.TimeRange("session_end", floor - GAP) if floor is not None else None,
            with_deltalake,
        )
        state = cls(horizon, floor, events, sessions)
        log.info(
            f"pipeline state: {state.events.num_rows:,} Silver events and {state.sessions.num_rows:,} "
            f"Gold sessions since {floor.isoformat() if floor else 'the start'} "
            f"({time.monotonic() - began:.1f} s, {'deltalake' if with_deltalake else 'Spark'})"
        )
        return state

    def _index(self, events: pa.Table, hashes: Hashes | None = None) -> None:
        viewers = viewer_hashes(events["user_id"], events["video_id"])
        self._records.add(events["event_id"], _coordinates(events), _times(events), viewers, hashes)

    def release_events(self) -> None:
        """Keep only the ids of the events, for deduplication (the keyed engine, whose operator holds its
        viewers' events in Spark's state store: reads of Silver then go to Delta)."""
        self.events = self.events.slice(0, 0)
        self.holds_events = False

    def holds_events_since(self, instant: datetime) -> bool:
        """True when every Silver event at or after `instant` is in the state's events."""
        return self.holds_events and self.covers(instant)

    def covers(self, instant: datetime) -> bool:
        """True when the state deduplicates every Silver event at or after `instant` (its id is held) and
        holds the sessions a later event could extend; its events too unless released
        (`holds_events_since`)."""
        return self.floor is None or instant >= self.floor

    def deduplicate(self, unique: pa.Table) -> tuple[pa.Table, pa.Table]:
        """`unseen` and `absent` of the same events, with one lookup."""
        held = self._records.records(unique["event_id"])
        if (held == ABSENT).all():
            return unique, unique
        own = _coordinates(unique)
        unseen = unique.filter(pa.array((held == ABSENT) | (held == own), pa.bool_()))
        return unseen, unique.filter(pa.array(held == ABSENT, pa.bool_()))

    def unseen(self, unique: pa.Table) -> pa.Table:
        """`transforms.silver.unseen_events` against the state, for events the state covers: the ones no
        other Kafka record delivered before."""
        return self.deduplicate(unique)[0]

    def absent(self, unique: pa.Table) -> pa.Table:
        """The events whose event_id the state does not hold at all (from any Kafka record), among those
        it covers: what a Silver append adds."""
        return self.deduplicate(unique)[1]

    def copies_of_other_viewers(self, valid: pa.Table) -> pa.Table:
        """The records of `valid` that copy an event the state holds from another record of another
        viewer (user_id, video_id): an id a producer reused, which Silver holds once, as its first record."""
        held, viewer = self._records.find(valid["event_id"])
        copy = (held != ABSENT) & (held != _coordinates(valid))
        if not copy.any():
            return valid.slice(0, 0)
        own_viewer = viewer_hashes(valid["user_id"], valid["video_id"])
        return valid.filter(pa.array(copy & (viewer != own_viewer), pa.bool_()))

    def add(self, new: pa.Table) -> None:
        """Hold the batch's new Silver events (those the state covers and does not hold yet), and count
        them in the window cells."""
        if self.floor is not None:
            new = new.filter(pc.greater_equal(new["event_time"], at(self.floor)))
        hashes = id_hashes(new["event_id"])  # once: for the lookup and the index
        fresh = self._records.records(new["event_id"], hashes) == ABSENT
        if not fresh.any():
            return
        rows = new.select(list(EVENT_COLUMNS))
        if not fresh.all():
            rows = rows.filter(pa.array(fresh, pa.bool_()))
            hashes = (hashes[0][fresh], hashes[1][fresh])
        rows = rows.cast(self.events.schema)
        self._index(rows, hashes)
        if self.holds_events:
            self.events = pa.concat_tables([self.events, rows])
        newest = pc.max(rows["event_time"]).as_py()
        if self.newest is None or newest > self.newest:
            self.newest = newest
        if self.counts_cells:
            added = gold.events_frame(rows)
            self.cells.add(added, *self._viewers(added))

    def _viewers(self, added: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The held events of `added`'s viewers in the time their windows read (`gold.context_span`), and
        which of them are `added`'s: the last rows of `events`, where `add` just put them. Marking them by
        position, not by looking their ids up, saves hashing every id of the span (a catch-up batch's
        200,000 and more)."""
        low, high = gold.context_span(added)
        times = self.events["event_time"]
        mask = pc.and_(
            pc.and_(pc.greater_equal(times, _instant(low)), pc.less(times, _instant(high))),
            pc.is_in(self.events["user_id"], value_set=pa.array(added["user_id"].unique(), pa.string())),
        )
        held = self.events.num_rows  # none when the events were released: then none is marked
        is_added = (np.arange(held) >= held - len(added))[pc.fill_null(mask, False).to_numpy()]
        return gold.events_frame(self.events.filter(mask)), is_added

    def events_since(self, low: datetime, high: datetime | None = None) -> pa.Table:
        """The held events with `low` <= event time (< `high`); `low` must be covered."""
        assert self.holds_events_since(low), f"no events held since {low} (floor {self.floor})"
        mask = pc.greater_equal(self.events["event_time"], at(low))
        if high is not None:
            mask = pc.and_(mask, pc.less(self.events["event_time"], at(high)))
        return self.events.filter(mask)

    def sessions_ending_since(self, instant: datetime) -> pa.Table:
        """The held Gold sessions that ended at or after `instant`; `instant + gap` must be covered."""
        assert self.covers(instant + GAP), f"{instant} is before the sessions held"
        return self.sessions.filter(pc.greater_equal(self.sessions["session_end"], at(instant)))

    def apply_sessions(self, rows: pa.Table, stale: pa.Table | None) -> None:
        """Apply a committed `gold.user_sessions` MERGE: `rows` upserted by key, `stale` deleted."""
        replaced = rows.select(list(SESSION_KEYS))
        if stale is not None and stale.num_rows:
            replaced = pa.concat_tables([replaced, stale.select(list(SESSION_KEYS)).cast(replaced.schema)])
        kept = self.sessions.join(replaced, list(SESSION_KEYS), join_type="left anti")
        self.sessions = pa.concat_tables([kept.select(self.sessions.schema.names), rows.cast(kept.schema)])

    def advance(self) -> None:
        """Move the floor up to the newest event time minus the horizon, dropping what falls below it."""
        if self.newest is None:
            return
        floor = self.newest - self.horizon
        # Dropping costs a pass over the state: do it a minute at a time.
        if self.floor is not None and floor - self.floor < timedelta(minutes=1):
            return
        self.floor = floor
        expired = pc.less(self.events["event_time"], at(floor))
        self._records.drop_before(_micros(floor))
        self.events = self.events.filter(pc.invert(expired)).combine_chunks()
        self.sessions = self.sessions.filter(
            pc.greater_equal(self.sessions["session_end"], at(floor - GAP))
        ).combine_chunks()
        if self.counts_cells:
            self.cells.forget(_micros(floor))


def _micros(instant: datetime) -> int:
    """An instant as microseconds since the epoch, as `gold` keeps times."""
    return (instant - EPOCH) // timedelta(microseconds=1)


def _instant(micros: int) -> pa.Scalar:
    return pa.scalar(micros, pa.int64()).cast(_TS)


def _coordinates(events: pa.Table) -> np.ndarray:
    """Each row's Kafka (partition, offset) as one int64: the partition above bit 40."""
    partitions = events["kafka_partition"].to_numpy(zero_copy_only=False).astype("int64")
    offsets = events["kafka_offset"].to_numpy(zero_copy_only=False).astype("int64")
    return (partitions << 40) | offsets


def _times(events: pa.Table) -> np.ndarray:
    """Each row's event time in µs."""
    micros = events["event_time"].cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    return micros.to_numpy(zero_copy_only=False)


def spark_frame(spark: SparkSession, table: pa.Table, schema: StructType) -> DataFrame:
    """A Spark DataFrame over a driver-side Arrow table (no Delta read)."""
    return spark.createDataFrame(table.select(schema.fieldNames()), schema=schema)
