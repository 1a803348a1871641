"""One micro-batch through every layer: Bronze rows → Silver (+ quarantine) → Gold → the status record.

Pulse does not chain streaming queries through Delta tables: each Kafka micro-batch is written to
Bronze, validated, deduplicated and folded into Gold in the same batch, so an event waits for one
trigger, not three (docs/pipeline.md says why and what each step measured).

Every write is idempotent per batch. Appends are marked with the run's id and the batch id in their
commit (`userMetadata`), and a batch a table already holds is not appended again (see `_append`). The
new Silver events of a batch are found the same way on every attempt (see `unseen_events`), and Gold
is written as absolute values recomputed for what the batch touched, so redoing a Gold MERGE is
harmless.

The work between reading Kafka and writing is done on the driver, from Arrow tables: the batch is
checked by one Spark job, deduplicated against the recent Silver events the driver holds
(`pulse.jobs.recent`), and folded into Gold by `pulse.transforms.gold`. Spark's part is the reading and the
writing, where a query costs about a second however few rows it moves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from pulse import io
from pulse.jobs import keyed
from pulse.jobs.keyed import KeyedRun
from pulse.jobs.recent import RecentState, at, first_per_event_id, spark_frame
from pulse.lake_access import delta_rs_access
from pulse.preflight import on_local_disk
from pulse.tables import BRONZE_EVENTS_RAW, GOLD_TABLES, SILVER_EVENTS, spark_schema
from pulse.transforms import gold
from pulse.transforms.silver import (
    BRONZE_PREFIX,
    absent_events,
    check_events,
    checked_rows,
    split_checked_rows,
    unseen_events,
)
from pulse_core import catalogue
from pulse_core.progress import (
    Progress,
    batch_marker,
    marked_batch,
    newest_progress,
    progress_metadata,
)
from pulse_core.semantics import SESSION_GAP_S
from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.pipeline")
# Delta writes this session setting into each commit's `userMetadata`: Gold commits carry the progress.
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
MATERIALIZE_SOURCE_CONF = "spark.databricks.delta.merge.materializeSource"


@dataclass(frozen=True)
class BatchResult:
    """What one micro-batch did. Every row in is an event, a quarantined row or a duplicate."""

    batch_id: int
    rows_in: int
    inserted: int
    quarantined: int
    duplicates: int
    windows_touched: bool
    sessions_rebuilt_from_silver: bool
    newest_event_time: datetime | None
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        phases = " ".join(f"{name} {seconds:.1f}" for name, seconds in self.phases.items())
        return (
            f"pipeline batch {self.batch_id}: {self.rows_in:,} rows in → {self.inserted:,} events, "
            f"{self.quarantined:,} quarantined, {self.duplicates:,} duplicates [{phases}] "
            f"({self.seconds:.1f} s)"
        )

    def record(self) -> dict[str, object]:
        """The result as plain values, for the progress log benchmarks read."""
        values = asdict(self)
        values["newest_event_time"] = self.newest_event_time.isoformat() if self.newest_event_time else None
        return values


# The Silver columns Gold is computed from.
GOLD_INPUT = ("event_id", "event_time", "event", "user_id", "video_id")


def _instant(micros: int) -> datetime:
    """The UTC instant `micros` microseconds after the epoch."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def ensure_tables(spark: SparkSession, settings: PulseSettings) -> None:
    """Create every lake table that is missing, so streams and readers can start before data arrives.

    Every table the pipeline writes commits once a micro-batch, so with Delta's default (a checkpoint every
    10 commits) all of them would write their checkpoint in the same batch, which then took 8 s longer: the
    catalogue gives each its own interval (docs/pipeline.md, "What a micro-batch costs").
    """
    for table in catalogue.TABLES:
        io.ensure_delta_table(
            spark,
            settings.table_path(table.layer, table.name),
            spark_schema(table),
            partition_by=table.partition_by,
            cluster_by=table.cluster_by,
            properties=table.properties,
        )


@dataclass
class GoldUpdate:
    """One Gold table's change for one batch: the rows to upsert by key (and the ones to delete)."""

    path: str
    schema: StructType
    keys: tuple[str, ...]
    prune: io.TimeRange
    rows: pa.Table
    stale: pa.Table | None = None

    def merge(
        self,
        spark: SparkSession,
        user_metadata: str,
        delta_rs: bool,
        storage_options: Callable[[str], dict[str, str] | None] = lambda _: None,
        written: dict[str, io.WrittenRange] | None = None,
    ) -> None:
        """MERGE the rows: upsert them by key, and delete the stale ones; with delta-rs when `delta_rs`
        (Spark's commits take `user_metadata` from the session, see `USER_METADATA_CONF`), authenticated
        with `storage_options(path)` on a cloud lake, starting from what the last batch left in the range
        where `written` still holds it (`io.merge_with_delta_rs`)."""
        if delta_rs:
            arrow = to_arrow_schema(self.schema, timezone="UTC")
            rows = self.rows.select(arrow.names).cast(arrow)
            stale = self.stale.select(arrow.names).cast(arrow) if self.stale is not None else None
            options = storage_options(self.path)
            io.merge_with_delta_rs(
                self.path, rows, self.keys, self.prune, user_metadata, stale, options, written
            )
            return
        rows = spark.createDataFrame(self.rows, schema=self.schema)
        if self.stale is None or not self.stale.num_rows:
            io.merge_upsert(spark, self.path, rows, self.keys, self.prune)
            return
        stale = spark.createDataFrame(self.stale, schema=self.schema)
        io.merge_replace(spark, self.path, rows, stale, self.keys, self.prune)


class RecentReader:
    """The reads one batch's Gold needs: from the driver-side state where it covers them, else from Delta.

    Args:
        silver_written: the batch's Silver append; a read from Silver itself waits for it, so it sees
            the batch's own events as the state does.
    """

    def __init__(
        self, spark: SparkSession, state: RecentState, paths: dict[str, str], silver_written: Future[None]
    ) -> None:
        self.spark = spark
        self.state = state
        self.paths = paths
        self.silver_written = silver_written

    def silver(self, low: datetime, high: datetime | None = None) -> pa.Table:
        """Silver events with `low` <= event time (< `high`), with the columns Gold uses."""
        if self.state.holds_events_since(low):
            return self.state.events_since(low, high).select(list(GOLD_INPUT))
        log.info(f"reading silver.events from Delta since {low.isoformat()}: below the recent state's floor")
        self.silver_written.result()
        rows = io.TimeRange("event_time", low, high)
        return io.read_delta_range(self.spark, self.paths["silver"], rows).select(*GOLD_INPUT).toArrow()

    def sessions(self, since: datetime) -> pa.Table:
        """Gold sessions that ended at or after `since`."""
        if self.state.covers(since + timedelta(seconds=SESSION_GAP_S)):
            return self.state.sessions_ending_since(since)
        log.info(
            f"reading gold.user_sessions from Delta since {since.isoformat()}: below the recent state's floor"
        )
        rows = io.TimeRange("session_end", since)
        return io.read_delta_range(self.spark, self.paths["user_sessions"], rows).toArrow()


APPENDED = ("bronze", "silver", "quarantine")  # the tables every batch appends to, in order


class MedallionWriter:
    """Writes one batch of Bronze-shaped rows to every layer; the same code serves streaming and backfill.

    Args:
        spark: the session.
        settings: where the tables are.
        run_id: names this run's transactions (`txnAppId`); a new checkpoint or backfill gets a new one,
            so its batch ids never collide with an earlier run's.
        write_bronze: append the rows to Bronze too (false when they come from Bronze).
        write_gold: fold the batch into Gold (false in a backfill, which rebuilds Gold once at the end).
        guard: called before every commit; raises when the run may no longer write (`pulse.jobs.lease`).

    A batch's Bronze append is its last commit, after Silver, quarantine and Gold: what Bronze holds is
    refined, which is what lets a job without a checkpoint start after it (`pulse.jobs.positions`).
    """

    def __init__(
        self,
        spark: SparkSession,
        settings: PulseSettings,
        run_id: str,
        write_bronze: bool,
        write_gold: bool = True,
        state: RecentState | None = None,
        guard: Callable[[], None] | None = None,
        keyed_run: KeyedRun | None = None,
    ) -> None:
        self.spark = spark
        # The keyed engine's query (`pulse.jobs.keyed`): Gold from its operator's changes; set once a
        # batch asked for its state to be rebuilt.
        self.keyed_run = keyed_run
        self.rebuild_requested = False
        self.settings = settings
        self.run_id = run_id
        self.write_bronze = write_bronze
        self.write_gold = write_gold
        self.paths = {
            "bronze": settings.table_path("bronze", "events_raw"),
            "silver": settings.table_path("silver", "events"),
            "quarantine": settings.table_path("silver", "quarantine"),
            **{name: settings.table_path("gold", name) for name in GOLD_TABLES},
        }
        if write_gold:
            # Gold MERGEs read an Arrow table on the driver, which cannot change under them: Delta need not
            # copy it first (one Spark job less per MERGE, measured in docs/pipeline.md).
            spark.conf.set(MATERIALIZE_SOURCE_CONF, "none")
        self.gold_writer = settings.gold_writer
        # How delta-rs authenticates to a cloud lake (a Unity Catalog service credential on Databricks).
        self.lake_access = delta_rs_access(settings) if settings.gold_writer != "spark" else None
        self._gold_by_delta_rs: dict[str, bool] | None = None
        # What each delta-rs Gold MERGE left in its range, so the next batch's need not read it again.
        self.gold_written: dict[str, io.WrittenRange] = {}
        self._appends_by_delta_rs: bool | None = None
        self.state = state
        # Called before every commit: raises when this run may no longer write (its lease is lost).
        self.guard = guard or (lambda: None)
        # The quarantine's highest Kafka offset per partition (see `_not_quarantined`); None until read.
        self.quarantined_through: dict[int, int] | None = None
        # The newest batch id this run appended per table (see `_append`); None until read.
        self.ledger: dict[str, int] | None = None
        self.verify_appends = True
        self.newest_event_time: datetime | None = None
        self.last: BatchResult | None = None

    def _app_id(self, table: str) -> str:
        return f"pulse-{self.run_id}-{table}"

    def write(self, rows: DataFrame, batch_id: int) -> BatchResult:
        """Write one batch: read → check → dedupe → fold into Gold → commit. Returns what it did; raises
        when a write fails (the batch is then retried).

        The commits start as soon as their rows are known, each on a thread of its own: the quarantine's
        after the check, Silver's after the dedupe (while Gold is computed), Gold's MERGEs side by side.
        Bronze's is last: Bronze holding a record means every other table holds what it made of it.
        """
        began = time.monotonic()
        phases: dict[str, float] = {}
        delta_rs = self.appends_by_delta_rs()
        batch, changes = rows, None
        if not delta_rs:
            # Read twice: by the check and by Spark's Bronze append (so the keyed engine's operator runs
            # once, in the first).
            batch = rows.persist()
            rows = batch
        pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="pulse-write")
        pending: list[Future[None]] = []
        try:
            self.guard()
            bronze_columns = tuple(BRONZE_EVENTS_RAW.fieldNames()) if self.write_bronze and delta_rs else ()
            if self.keyed_run is not None:
                checked, changes = self._read_and_change(batch, bronze_columns)
                rows = keyed.raw_records(batch)
            else:
                checked = self._read_and_check(rows, bronze_columns)
            valid, rejected = split_checked_rows(checked)
            rows_in, quarantined = valid.num_rows + rejected.num_rows, rejected.num_rows
            rejected = self._not_quarantined(rejected)
            if rejected.num_rows:
                quarantine = self._appendable(rejected, catalogue.SILVER_QUARANTINE)
                pending.append(pool.submit(self._append, "quarantine", quarantine, batch_id))
            phases["check"] = time.monotonic() - began
            inserted, windows, rebuilt = 0, False, False
            if valid.num_rows:
                step = time.monotonic()
                new, absent = self._dedupe(valid)
                silver_rows = self._appendable(absent, catalogue.SILVER_EVENTS)
                silver = pool.submit(self._append, "silver", silver_rows, batch_id)
                pending.append(silver)
                inserted = absent.num_rows
                phases["silver"] = time.monotonic() - step
                step = time.monotonic()
                if self.keyed_run is not None and changes is not None:
                    updates, rebuilt = self._fold_keyed(valid, new, absent, changes, batch_id, silver)
                else:
                    updates, rebuilt = self._fold(new, silver)
                phases["compute"] = time.monotonic() - step
                step = time.monotonic()
                if updates:
                    self._commit_gold(updates, batch_id, pool)
                    windows = True
                self.recent().advance()
                phases["merge"] = time.monotonic() - step
            for future in pending:
                future.result()
            if self.write_bronze and rows_in:
                self._append("bronze", bronze_rows(checked) if bronze_columns else rows, batch_id)
        except BaseException:
            # The state and the ledger may now differ from the tables: read both again with the retry.
            self.state = None
            self.ledger = None
            self.quarantined_through = None
            raise
        finally:
            pool.shutdown(wait=True)
            if not delta_rs:
                batch.unpersist()
        seconds = time.monotonic() - began
        result = BatchResult(
            batch_id=batch_id,
            rows_in=rows_in,
            inserted=inserted,
            quarantined=quarantined,
            duplicates=rows_in - quarantined - inserted,
            windows_touched=windows,
            sessions_rebuilt_from_silver=rebuilt,
            newest_event_time=self.newest_event_time,
            seconds=seconds,
            phases=phases,
        )
        self.last = result
        self.verify_appends = False
        return result

    def storage_options(self, path: str) -> dict[str, str] | None:
        """delta-rs storage options for `path`: a fresh token on a cloud lake with a service credential,
        else None (a local lake, or Azure credentials from the environment)."""
        if self.lake_access is None or on_local_disk(path):
            return None
        return self.lake_access.options()

    def appends_by_delta_rs(self) -> bool:
        """True when delta-rs commits the Bronze, Silver and quarantine appends from the driver, False
        when Spark does: the same rule as Gold's MERGEs (`gold_by_delta_rs`), decided once per run."""
        if self._appends_by_delta_rs is None:
            tables = [name for name in APPENDED if name != "bronze" or self.write_bronze]
            delta_rs = self.gold_writer == "delta-rs" or (
                self.gold_writer == "auto" and all(on_local_disk(self.paths[name]) for name in tables)
            )
            refusals = (
                [io.delta_rs_refusal(self.paths[n], self.storage_options(self.paths[n])) for n in tables]
                if delta_rs
                else []
            )
            self._appends_by_delta_rs = delta_rs and not any(refusals)
            log.info(f"appends: {'delta-rs' if self._appends_by_delta_rs else 'Spark'}")
        return self._appends_by_delta_rs

    def _append(self, table: str, rows: DataFrame | pa.Table, batch_id: int) -> None:
        """Append a batch's rows to a Bronze or Silver table once, however often the batch is replayed.

        Each append's commit is marked with the run and batch id. The run's newest mark per table is read
        from the tables' history on the first batch and after a failure; a batch already marked is
        skipped. That first batch also asks Delta's own transaction check (`txnAppId`), which is exact for
        commits made before the marks existed and costs a log replay, so later batches do without it.
        """
        if self.ledger is None:
            self.ledger = {name: newest_mark(self.spark, self.paths[name], self.run_id) for name in APPENDED}
            self.verify_appends = True
        self.guard()
        if batch_id <= self.ledger[table]:
            log.info(f"batch {batch_id}: {table} already holds it; not appended again")
            return
        marker = batch_marker(self.run_id, batch_id)
        if isinstance(rows, pa.Table):
            # delta-rs checks and records the transaction on every append: it costs no log replay.
            schema = APPENDED_TABLES[table].arrow_schema()
            if not io.append_with_delta_rs(self.paths[table], rows.select(schema.names).cast(schema), marker,
                                   (self._app_id(table), batch_id),
                                   self.storage_options(self.paths[table])):  # fmt: skip
                log.info(
                    f"batch {batch_id}: {table} already holds it (Delta transaction); not appended again"
                )
        else:
            txn = (self._app_id(table), batch_id) if self.verify_appends else None
            io.append(rows, self.paths[table], marker, txn)
        self.ledger[table] = batch_id

    def _not_quarantined(self, rejected: pa.Table) -> pa.Table:
        """The rejected rows the quarantine does not hold yet: above its highest offset per partition.

        Records are refined in offset order within a partition, and a batch's quarantine rows land in
        one commit, so a rejected record at or below that offset is already there: one another run
        refined before a reset or under another job mode (docs/pipeline.md, "Resets and job modes").
        """
        if not rejected.num_rows:
            return rejected
        if self.quarantined_through is None:
            self.quarantined_through = io.kafka_high_water(
                self.spark, self.paths["quarantine"], "kafka_partition", "kafka_offset"
            )
        held = self.quarantined_through
        partitions = rejected["kafka_partition"].to_pylist()
        offsets = rejected["kafka_offset"].to_pylist()
        keep = [o > held.get(p, -1) for p, o in zip(partitions, offsets, strict=True)]
        for p, o in zip(partitions, offsets, strict=True):
            held[p] = max(o, held.get(p, -1))
        if all(keep):
            return rejected
        log.info(f"{keep.count(False):,} rejected rows the quarantine already holds; not appended again")
        return rejected.filter(pa.array(keep, pa.bool_()))

    def recent(self) -> RecentState:
        """The driver-side state, loaded from the tables the first time and after a failed batch."""
        if self.state is None:
            self.state = load_recent_state(self.spark, self.settings, self.keyed_run is not None)
            if self.keyed_run is not None:
                self.state.release_events()
        return self.state

    def _read_and_check(self, rows: DataFrame, bronze_columns: tuple[str, ...]) -> pa.Table:
        """Read → check: the batch's one Spark job, which brings the checked rows (and `bronze_columns`)
        to the driver; all that follows works from there."""
        return checked_rows(check_events(rows), bronze_columns).toArrow()

    def _read_and_change(
        self, batch: DataFrame, bronze_columns: tuple[str, ...]
    ) -> tuple[pa.Table, pd.DataFrame]:
        """The keyed engine's read: one Spark job brings the checked records (checked in the query, once)
        and the operator's rows to the driver. The batch is one Spark dataset of both (foreachBatch hands
        it over whole), so one pass over it runs the operator once. The records come grouped by viewer,
        as the query partitioned them, and stay so: nothing after this needs Kafka order."""
        return keyed.split_rows(keyed.checked_records(batch, bronze_columns).toArrow())

    def _appendable(self, rows: pa.Table, table: catalogue.Table) -> pa.Table | DataFrame:
        """Rows as `_append` takes them: Arrow for delta-rs, a Spark frame when Spark appends."""
        return rows if self.appends_by_delta_rs() else spark_frame(self.spark, rows, spark_schema(table))

    def _dedupe(self, valid: pa.Table) -> tuple[pa.Table, pa.Table]:
        """The batch's valid events, deduplicated: (new, absent).

        `new` is what Gold takes: the first record of each event_id no other Kafka record delivered before,
        including events Silver holds from this very record (an earlier attempt at this batch, or a run
        before a reset), whose Gold commit may not have happened. `absent` is what Silver takes: the events
        it does not hold at all, so it keeps one row per event_id whichever run reads a record. Events the
        recent state covers are looked up there; older ones in Silver itself (`_unseen_in_silver`).
        """
        state = self.recent()
        unique = first_per_event_id(valid)
        if state.floor is None:
            return state.deduplicate(unique)
        covered = pc.greater_equal(unique["event_time"], at(state.floor))
        late_new, late_absent = self._unseen_in_silver(unique.filter(pc.invert(covered)))
        new, absent = state.deduplicate(unique.filter(covered))
        return pa.concat_tables([new, late_new]), pa.concat_tables([absent, late_absent])

    def _fold(self, new: pa.Table, silver_written: Future[None]) -> tuple[list[GoldUpdate], bool]:
        """Fold the new events into the recent state, and into Gold: the Gold rows they change (sessions
        last; none in a backfill, which rebuilds Gold at the end), and whether some viewers' sessions were
        rebuilt. A read from Silver itself waits for `silver_written`."""
        state = self.recent()
        state.add(new)
        if not new.num_rows or not self.write_gold:
            return [], False
        last = pc.max(new["event_time"]).as_py()
        if self.newest_event_time is None or last > self.newest_event_time:
            self.newest_event_time = last
        return self._gold_updates(RecentReader(self.spark, state, self.paths, silver_written), new)

    def _fold_keyed(
        self,
        valid: pa.Table,
        new: pa.Table,
        absent: pa.Table,
        changes: pd.DataFrame,
        batch_id: int,
        silver_written: Future[None],
    ) -> tuple[list[GoldUpdate], bool]:
        """The keyed engine's fold (`pulse.jobs.keyed`): the Gold rows the operator's changes touch, from
        the window cells and its session rows; and for the events it cannot hold exactly (`suspects`:
        older than it counts from, held by Silver before this batch, or copies of another viewer's event,
        which the operator, telling copies apart per viewer, counted), the rows recomputed from Silver as
        the driver engine does, after which the operator's state is rebuilt. Sessions last."""
        assert self.keyed_run is not None
        state = self.recent()
        state.add(new)  # for deduplication only: the operator's sums change the cells
        if not new.num_rows:
            return [], False
        last = pc.max(new["event_time"]).as_py()
        if self.newest_event_time is None or last > self.newest_event_time:
            self.newest_event_time = last
        run = self.keyed_run
        watermark = keyed.batch_watermark_us(self.spark, run.checkpoint, batch_id)
        counted = keyed.counted_from(watermark, run.floor_us)
        # Found in Arrow, and only they become frames: building a frame of the whole batch cost the driver
        # more than the rest of the fold (docs/scale.md, session 22).
        late = gold.micros(new["event_time"]) < counted
        # `absent` is a part of `new`: as large, it is all of it.
        held_before = (
            ~pc.is_in(new["event_id"], value_set=absent["event_id"]).to_numpy(zero_copy_only=False)
            if absent.num_rows < new.num_rows
            else np.zeros(new.num_rows, dtype=bool)
        )
        # Only a batch with copies (valid records that are not new) can hold another viewer's event.
        copies = gold.events_frame(
            state.copies_of_other_viewers(valid) if valid.num_rows > new.num_rows else new.slice(0, 0)
        )
        copies = copies[copies["t"] >= counted]
        uncounted = gold.events_frame(new.filter(pa.array(late | held_before, pa.bool_())))
        suspects = pd.concat([uncounted, copies], ignore_index=True)
        activity, types, sessions = keyed.sum_changes(changes)
        if not suspects.empty:
            older, replayed = int(late.sum()), int(held_before.sum())
            self.rebuild_requested = True
            keyed.request_rebuild(self.spark, run.checkpoint,
                                  f"batch {batch_id}: events older than the operator counts: {older:,}; "
                                  f"held by Silver already: {replayed:,}; copies of another viewer's "
                                  f"event: {len(copies):,}")  # fmt: skip
        cells = state.cells
        keyed.apply_windows(cells, activity, types)
        reader = RecentReader(self.spark, state, self.paths, silver_written)
        recounted: dict[str, pa.Table] = {}
        skip_activity: set[tuple[str, int]] = set()
        skip_types: set[tuple[str, int]] = set()
        if not suspects.empty:
            low, high = (_instant(bound) for bound in gold.context_span(suspects))
            recounted = gold.window_rows(suspects, gold.events_frame(reader.silver(low, high)))
            touched = gold.touched_windows(suspects)
            touched_starts = touched["window_start"].astype("int64")
            skip_activity = set(zip(touched["video_id"], touched_starts, strict=True))
            own = gold.window_of(suspects["t"]).astype("int64")
            skip_types = set(zip(suspects["video_id"], own, strict=True))
        rows = keyed.touched_rows(cells, activity, types, skip_activity, skip_types)
        starts = [int(s) for s in activity["start"]] + [int(s) for s in types["start"]]
        if not suspects.empty:
            starts += [int(t) for t in gold.touched_windows(suspects)["window_start"]]
        updates = []
        if starts:
            high = _instant(max(starts) + keyed.MINUTE_US)
            prune = io.TimeRange("window_start", _instant(min(starts)), high)
            for name in ("video_activity", "events_by_type"):
                table = rows[name]
                if name in recounted:
                    table = pa.concat_tables([table, recounted[name].cast(table.schema)])
                if table.num_rows:
                    updates.append(GoldUpdate(self.paths[name], *GOLD_TABLES[name], prune, table))
        viewers = set(zip(suspects["user_id"], suspects["video_id"], strict=True))
        upsert, stale = keyed.session_rows(sessions, viewers)
        session_starts = [*gold.micros(upsert["session_start"]), *gold.micros(stale["session_start"])]
        rebuilt = False
        # A copy's viewer may have no new event: its Gold sessions, which never took the copy, then stand.
        theirs = _events_of(new, viewers)
        if not theirs.empty:
            first = _instant(int(theirs["t"].min()))
            rows_of, stale_of = self._sessions(reader, theirs, first)
            upsert = pa.concat_tables([upsert, rows_of])
            if stale_of is not None:
                stale = pa.concat_tables([stale, stale_of])
            session_starts.append(int(theirs["t"].min()) - SESSION_GAP_S * 1_000_000)
            rebuilt = stale_of is not None
        if session_starts:
            schema, keys = GOLD_TABLES["user_sessions"]
            prune = io.TimeRange("session_end", _instant(int(min(session_starts))))
            updates.append(GoldUpdate(self.paths["user_sessions"], schema, keys, prune, upsert,
                                      stale if stale.num_rows else None))  # fmt: skip
        cells.forget(counted - keyed.MINUTE_US)
        return updates, rebuilt

    def _commit_gold(self, updates: list[GoldUpdate], batch_id: int, pool: ThreadPoolExecutor) -> None:
        """Commit the Gold MERGEs side by side, each carrying the batch's progress record (see
        `read_progress`), then apply the sessions' to the recent state."""
        metadata = progress_metadata(self.run_id, batch_id, self.newest_event_time)
        delta_rs = self.gold_by_delta_rs()
        self.guard()
        self.spark.conf.set(USER_METADATA_CONF, metadata)
        try:
            options = self.storage_options
            merges = [
                pool.submit(u.merge, self.spark, metadata, delta_rs[u.path], options, self.gold_written)
                for u in updates
            ]
            for merge in merges:
                merge.result()
        finally:
            self.spark.conf.unset(USER_METADATA_CONF)
        for update in updates:
            if update.path == self.paths["user_sessions"]:
                self.recent().apply_sessions(update.rows, update.stale)

    def gold_by_delta_rs(self) -> dict[str, bool]:
        """Per Gold table path: True when delta-rs commits its MERGEs, False when Spark does (see
        `PulseSettings.gold_writer`). Decided once per run, when Gold is first written."""
        if self._gold_by_delta_rs is None:
            by_delta_rs = {name: self._delta_rs_writes(name) for name in GOLD_TABLES}
            self._gold_by_delta_rs = {self.paths[name]: delta_rs for name, delta_rs in by_delta_rs.items()}
            spark_tables = [name for name, delta_rs in by_delta_rs.items() if not delta_rs]
            log.info(
                "Gold MERGEs: "
                + (f"Spark for {', '.join(spark_tables)}" if spark_tables else "delta-rs for every table")
            )
        return self._gold_by_delta_rs

    def _delta_rs_writes(self, name: str) -> bool:
        path = self.paths[name]
        if self.gold_writer == "spark" or (self.gold_writer == "auto" and not on_local_disk(path)):
            return False
        refusal = io.delta_rs_refusal(path, self.storage_options(path))
        if refusal is None:
            return True
        advice = (
            f"gold.{name}: {refusal}, as tables made by Pulse before delta-rs wrote Gold do. Rebuild Gold "
            "for the fast path: stop the pipeline, delete the lake's gold/ folder and run `pulse backfill`."
        )
        if self.gold_writer == "delta-rs":
            raise RuntimeError(f"PULSE_GOLD_WRITER=delta-rs cannot write {advice}")
        log.warning(f"Spark MERGEs {advice}")
        return False

    def _unseen_in_silver(self, unique: pa.Table) -> tuple[pa.Table, pa.Table]:
        """For events older than the state's floor (late events), found in Silver itself: the new ones
        (`unseen_events`), and those Silver does not hold at all (`absent_events`)."""
        if not unique.num_rows:
            return unique, unique
        log.info(f"deduplicating {unique.num_rows:,} events against Delta: below the recent state's floor")
        first, last = pc.min(unique["event_time"]).as_py(), pc.max(unique["event_time"]).as_py()
        # The same event_id always carries the same event time: only Silver rows in the range can be copies.
        span = io.TimeRange("event_time", first, last + timedelta(microseconds=1))
        silver_range = io.read_delta_range(self.spark, self.paths["silver"], span)
        frame = spark_frame(self.spark, unique, SILVER_EVENTS)
        new = unseen_events(frame, silver_range).toArrow().cast(unique.schema)
        absent = absent_events(frame, silver_range).toArrow().cast(unique.schema)
        return new, absent

    def _gold_updates(self, reader: RecentReader, new: pa.Table) -> tuple[list[GoldUpdate], bool]:
        """The Gold rows the batch's new events change, computed on the driver (`pulse.transforms.gold`).
        Returns the updates (sessions last), and whether some viewers' sessions were rebuilt."""
        batch = gold.events_frame(new)
        low, high = (_instant(bound) for bound in gold.context_span(batch))
        windows = self._window_rows(reader, batch)
        prune = io.TimeRange("window_start", low, high)
        updates = [
            GoldUpdate(self.paths[name], *GOLD_TABLES[name], prune, rows) for name, rows in windows.items()
        ]
        first = _instant(int(batch["t"].min()))
        sessions, stale = self._sessions(reader, batch, first)
        schema, keys = GOLD_TABLES["user_sessions"]
        prune = io.TimeRange("session_end", first - timedelta(seconds=SESSION_GAP_S))
        updates.append(GoldUpdate(self.paths["user_sessions"], schema, keys, prune, sessions, stale))
        return updates, stale is not None

    def _window_rows(self, reader: RecentReader, batch: pd.DataFrame) -> dict[str, pa.Table]:
        """The window rows the batch's new events change: from the recent state's window cells where they
        hold the window (`gold.WindowCells`), else recounted from the window's events, as late events
        near or below the state's floor need."""
        cells = reader.state.cells
        rows = cells.rows(batch)
        rest = batch[~cells.holds(gold.window_of(batch["t"]))]
        if rest.empty:
            return rows
        low, high = (_instant(bound) for bound in gold.context_span(rest))
        recounted = gold.window_rows(rest, gold.events_frame(reader.silver(low, high)))
        activity = recounted["video_activity"]
        activity = activity.filter(pa.array(~cells.holds(gold.micros(activity["window_start"]))))
        return {
            "video_activity": pa.concat_tables([rows["video_activity"], activity]),
            "events_by_type": pa.concat_tables([rows["events_by_type"], recounted["events_by_type"]]),
        }

    def _sessions(
        self, reader: RecentReader, batch: pd.DataFrame, first: datetime
    ) -> tuple[pa.Table, pa.Table | None]:
        """The `gold.user_sessions` rows the new events change, and the rows that no longer exist."""
        recent = gold.sessions_frame(reader.sessions(first - timedelta(seconds=SESSION_GAP_S)))

        def history(since: int) -> pd.DataFrame:
            return gold.events_frame(reader.silver(_instant(since)))

        sessions, stale = gold.update_sessions(batch, recent, history)
        return (
            gold.sessions_table(sessions),
            gold.sessions_table(stale) if stale is not None else None,
        )


# The tables delta-rs appends to from the driver, by the names the writer keeps their paths under.
APPENDED_TABLES = {
    "bronze": catalogue.BRONZE_EVENTS_RAW,
    "silver": catalogue.SILVER_EVENTS,
    "quarantine": catalogue.SILVER_QUARANTINE,
}


def _events_of(events: pa.Table, viewers: set[tuple[str, str]]) -> pd.DataFrame:
    """The events of these viewers (user_id, video_id), as `gold.events_frame`."""
    if not viewers:
        return gold.events_frame(events.slice(0, 0))
    users = pa.array(sorted({user for user, _ in viewers}), pa.string())
    frame = gold.events_frame(events.filter(pc.is_in(events["user_id"], value_set=users)))
    pairs = pd.Series(list(zip(frame["user_id"], frame["video_id"], strict=True)), index=frame.index)
    return frame[pairs.isin(viewers)]


def bronze_rows(checked: pa.Table) -> pa.Table:
    """The Bronze rows of a batch from its `checked_rows` brought to the driver."""
    names = BRONZE_EVENTS_RAW.fieldNames()
    return checked.select([BRONZE_PREFIX + name for name in names]).rename_columns(names)


def load_recent_state(
    spark: SparkSession, settings: PulseSettings, keyed_engine: bool = False
) -> RecentState:
    """The driver-side state a `MedallionWriter` starts from (`pulse.jobs.recent`). For the keyed engine
    it begins where `pulse.jobs.keyed` needs it, and its window cells follow the operator's changes."""
    state = RecentState.load(
        spark,
        settings.table_path("silver", "events"),
        settings.table_path("gold", "user_sessions"),
        timedelta(minutes=settings.recent_minutes),
        floor_for=keyed.state_floor(settings) if keyed_engine else None,
    )
    state.counts_cells = not keyed_engine
    return state


def newest_mark(spark: SparkSession, path: str, run_id: str) -> int:
    """The newest batch id `run_id` marked in a table's commits, or -1."""
    for limit in (100, None):
        metadata = [commit.user_metadata for commit in io.commit_history(spark, path, limit)]
        for batch_id in (marked_batch(entry, run_id) for entry in metadata):
            if batch_id is not None:
                return batch_id
        if limit is not None and len(metadata) < limit:
            break
    return -1


def read_progress(spark: SparkSession | None, path: str) -> Progress | None:
    """The newest progress record among a Gold table's recent commits (from `io.commit_history`: on local
    disk with deltalake, milliseconds where a cold Spark takes seconds)."""
    return newest_progress([(c.user_metadata, c.committed_at) for c in io.commit_history(spark, path, 20)
                            if c.committed_at is not None])  # fmt: skip
