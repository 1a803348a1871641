"""The streaming jobs that write Silver and Gold: one query, every layer in each micro-batch.

- `start_from_kafka` (`pulse pipeline all`): Kafka → Bronze → Silver (+ quarantine) → Gold.
- `start_from_bronze` (`pulse pipeline silver`): Bronze's new rows → Silver (+ quarantine) → Gold, for
  when Bronze is landed by a separate `pulse pipeline bronze`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from pulse import io
from pulse.jobs import keyed, positions
from pulse.jobs.medallion import MedallionWriter, ensure_tables, load_recent_state, read_progress
from pulse.jobs.recent import RecentState
from pulse.progress_log import ProgressLog
from pulse_core.progress import Progress
from pulse_core.settings import PulseSettings

FROM_KAFKA = "pipeline"
# Records per micro-batch when none is given: each batch comes to the driver whole (Arrow), so a backlog
# (a restart after a long stop, `--once` over millions of events) is split rather than collected at once.
# A live batch at 2,000 events/s holds a few thousand, far below it. Batches of 340,000 were tried and
# not kept: no gain `make bench` could tell from noise, for 150 MiB more of the driver (docs/scale.md,
# session 24).
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 200_000
FROM_BRONZE = "refine"
log = logging.getLogger("pulse.pipeline")


def spark_job_counter(spark: SparkSession) -> int | None:
    """How many Spark jobs the session has started so far, or None where the runtime hides it."""
    try:
        return int(spark.sparkContext._jsc.sc().dagScheduler().numTotalJobs())  # type: ignore[union-attr]
    except Exception:  # Databricks and Spark Connect do not expose the scheduler
        return None


class StopBeforeBatchError(RuntimeError):
    """Raised by the handler at the start of a micro-batch once a stop was asked for: the query ends
    before the batch wrote anything, so its next start redoes that batch whole (nothing half-committed)."""


class BatchHandler:
    """The foreachBatch handler: hands each micro-batch to a `MedallionWriter`, logs what it did and records
    it in the progress log.

    The writer's transactions are named after the query's checkpoint id, read on the first batch: a
    reset checkpoint restarts batch ids at 0 under a new name, so no earlier write is mistaken for one.
    """

    def __init__(
        self,
        spark: SparkSession,
        settings: PulseSettings,
        job: str,
        write_bronze: bool,
        stop: threading.Event | None = None,
        progress_log: ProgressLog | None = None,
        guard: Callable[[], None] | None = None,
        keyed_run: keyed.KeyedRun | None = None,
        state: RecentState | None = None,
    ) -> None:
        self.spark = spark
        self.guard = guard
        self.keyed_run = keyed_run
        self.stop = stop
        self.progress_log = progress_log or ProgressLog(None)
        self.settings = settings
        self.job = job
        self.write_bronze = write_bronze
        self.writer: MedallionWriter | None = None
        # Set once a batch asked for the keyed engine's state to be rebuilt: the query then stops.
        self.rebuild_asked = False
        # What the first batch needs from the tables loads while the query starts (docs/pipeline.md).
        preload = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pulse-preload")
        self._state = (
            preload.submit(lambda: state)
            if state is not None
            else preload.submit(load_recent_state, spark, settings, keyed_run is not None)
        )
        self._progress = preload.submit(read_progress, spark, settings.table_path("gold", "video_activity"))
        preload.shutdown(wait=False)

    def _preloaded(self) -> tuple[RecentState | None, Progress | None]:
        """The preloaded state and progress; a failed load is left to the batch, which reports it."""
        loaded: list = []
        for future in (self._state, self._progress):
            try:
                loaded.append(future.result())
            except Exception as exc:
                log.warning(f"preloading from the tables failed ({exc}); the first batch reads them itself")
                loaded.append(None)
        return loaded[0], loaded[1]

    def _checkpoint_id(self) -> str:
        metadata = self.spark.read.text(f"{self.settings.checkpoint_path(self.job)}/metadata").first()
        assert metadata is not None, "a started query always has checkpoint metadata"
        return str(json.loads(metadata[0])["id"])

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if self.stop is not None and self.stop.is_set():
            raise StopBeforeBatchError(f"stopped before micro-batch {batch_id}, which the next start runs")
        if self.keyed_run is not None and self.rebuild_asked:
            # The operator's state is stale: the runner starts the query over (`keyed.rebuild_if_asked`).
            raise StopBeforeBatchError(f"rebuilding the keyed engine's state before micro-batch {batch_id}")
        if self.guard is not None:
            self.guard()
        if self.writer is None:
            state, progress = self._preloaded()
            run_id = f"{self.job}-{self._checkpoint_id()}"
            self.writer = MedallionWriter(
                self.spark, self.settings, run_id, self.write_bronze, state=state, guard=self.guard,
                keyed_run=self.keyed_run,
            )  # fmt: skip
            self.writer.newest_event_time = progress.newest_event_time if progress else None
        jobs_before = spark_job_counter(self.spark)
        result = self.writer.write(batch, batch_id)
        jobs_after = spark_job_counter(self.spark)
        self.rebuild_asked = self.writer.rebuild_requested
        if not result.rows_in:
            return
        spark_jobs = jobs_after - jobs_before if jobs_before is not None and jobs_after else None
        jobs = f", {spark_jobs} spark jobs" if spark_jobs is not None else ""
        lag = ""
        if result.newest_event_time is not None:
            lag = f", newest event {(datetime.now(UTC) - result.newest_event_time).total_seconds():.1f} s ago"
        log.info(result.line() + jobs + lag)
        self.progress_log.batch(self.job, result.record(), spark_jobs)


def start_from_kafka(
    spark: SparkSession,
    settings: PulseSettings,
    trigger: io.Trigger,
    max_offsets_per_trigger: int | None = None,
    stop: threading.Event | None = None,
    progress_log: ProgressLog | None = None,
    guard: Callable[[], None] | None = None,
    partitions: int | None = None,
) -> StreamingQuery:
    """Start the real-time pipeline: each Kafka micro-batch goes through every layer. Setting `stop` ends
    the query at its next micro-batch, before that batch writes anything; each batch is recorded in
    `progress_log`; `guard` is called before every commit (the run's lease); `partitions` is the topic's
    partition count, for where a query without a checkpoint starts."""
    ensure_tables(spark, settings)
    limit = max_offsets_per_trigger or DEFAULT_MAX_OFFSETS_PER_TRIGGER
    checkpoint = settings.checkpoint_path(FROM_KAFKA)
    keyed_engine = settings.engine == "keyed"
    keyed.switch_engine(spark, checkpoint, keyed_engine)
    # A keyed checkpoint of another state layout, or in other state partitions, is moved aside: the
    # state is then rebuilt from the lake.
    if keyed_engine and not keyed.reformat(spark, checkpoint):
        keyed.repartition(spark, settings, checkpoint)
    records = positions.kafka_records(spark, settings, checkpoint, limit, partitions)
    sink = io.StreamSink(FROM_KAFKA, checkpoint, trigger)
    if not keyed_engine:
        handler = BatchHandler(spark, settings, FROM_KAFKA, True, stop, progress_log, guard)
        return io.write_foreach_batch(records, handler, sink)
    # The keyed engine: the operator's state starts from its checkpoint, or from the lake.
    state = load_recent_state(spark, settings, keyed_engine=True)
    start = keyed.start_state(spark, settings, checkpoint, state)
    run = keyed.KeyedRun(checkpoint, start.floor_us)
    handler = BatchHandler(spark, settings, FROM_KAFKA, True, stop, progress_log, guard, run, state)
    # The query copies the session's settings when it starts, and a new checkpoint keeps its partitions.
    partitions = keyed.state_partitions(spark, settings, checkpoint)
    session_partitions = spark.conf.get(keyed.PARTITIONS_CONF)
    spark.conf.set(keyed.PARTITIONS_CONF, str(partitions))
    try:
        return io.write_foreach_batch(keyed.with_changes(records, settings, start, partitions), handler, sink)
    finally:
        spark.conf.set(keyed.PARTITIONS_CONF, session_partitions or str(partitions))


def start_from_bronze(
    spark: SparkSession,
    settings: PulseSettings,
    trigger: io.Trigger,
    max_files_per_trigger: int | None = None,
    stop: threading.Event | None = None,
    progress_log: ProgressLog | None = None,
    guard: Callable[[], None] | None = None,
) -> StreamingQuery:
    """Start refining Bronze's appended rows into Silver and Gold (`stop`, `progress_log`, `guard` as in
    `start_from_kafka`). Without a checkpoint it starts after what `all` refined
    (`positions.refine_starting_version`)."""
    ensure_tables(spark, settings)
    path, checkpoint = settings.table_path("bronze", "events_raw"), settings.checkpoint_path(FROM_BRONZE)
    version = None
    if not io.has_checkpoint(spark, checkpoint):
        version = positions.refine_starting_version(spark, path)
        where = (
            f"Bronze version {version}, `all`'s newest commit"
            if version is not None
            else "Bronze's first row"
        )
        log.info(f"{FROM_BRONZE}: no checkpoint; starting at {where}")
    bronze = io.read_delta_stream(spark, path, max_files_per_trigger, starting_version=version)
    sink = io.StreamSink(FROM_BRONZE, checkpoint, trigger)
    handler = BatchHandler(spark, settings, FROM_BRONZE, False, stop, progress_log, guard)
    return io.write_foreach_batch(bronze, handler, sink)
