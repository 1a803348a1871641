"""Run pipeline jobs: one at a time with `--once`, or together and continuously until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark import SparkContext
from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from pulse import engine, io, preflight
from pulse.jobs import Job, Query, bronze, keyed, positions, stream
from pulse.jobs.lease import (
    CHECKPOINT_ROLES,
    LEASES_FOLDER,
    LeaseHeldError,
    LeaseLostError,
    Leases,
    committed_by_deltalake,
)
from pulse.progress_log import ProgressLog
from pulse.spark import get_spark
from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.pipeline")
PIPELINE_JOBS = tuple(job.value for job in Job)
# How long Ctrl-C waits for running micro-batches before stopping them anyway.
STOP_TIMEOUT_S = 120.0
# Where Spark logs a query's failure; quieted while the pipeline stops (`_stop_between_batches`).
STREAM_EXECUTION_LOGGER = "org.apache.spark.sql.execution.streaming"


class PipelineError(RuntimeError):
    """A streaming query failed. The message carries Spark's reason."""


class ProgressLines:
    """One readable line (and progress record) per micro-batch for queries whose sink does not log its own
    (Bronze).

    It polls `recentProgress` from the driver loop rather than registering a listener, so no callback
    from the JVM can arrive after the Python side is gone.
    """

    def __init__(self, names: set[str], progress_log: ProgressLog) -> None:
        self.names = names
        self.progress_log = progress_log
        self._logged: dict[str, int] = {}

    def log_new(self, query: StreamingQuery) -> None:
        if query.name not in self.names:
            return
        for progress in query.recentProgress:
            batch_id = progress.batchId
            if batch_id <= self._logged.get(query.name, -1):
                continue
            self._logged[query.name] = batch_id
            rows_in = progress.numInputRows
            if rows_in == 0:
                continue
            seconds = progress.durationMs.get("triggerExecution", 0) / 1000
            written = progress.sink.numOutputRows
            out = f"{written:,} rows out" if written >= 0 else "written"
            log.info(f"{query.name} batch {batch_id}: {rows_in:,} rows in → {out} ({seconds:.1f} s)")
            values = {"batch_id": batch_id, "rows_in": rows_in, "rows_out": written, "seconds": seconds}
            self.progress_log.batch(query.name, values)


@dataclass(frozen=True)
class PipelineOptions:
    """How to run: which job, once or continuously, and how often."""

    job: Job = Job.all
    once: bool = False
    trigger_seconds: float = io.Trigger.interval_s
    max_offsets_per_trigger: int | None = None
    max_files_per_trigger: int | None = None
    kafka_wait_seconds: float = 0.0

    @property
    def trigger(self) -> io.Trigger:
        """When the job's query runs: `once`, or every `trigger_seconds`."""
        return io.Trigger(once=self.once, interval_s=self.trigger_seconds)


@dataclass(frozen=True)
class RunContext:
    """What a started job shares with its query: the stop flag, the progress log, the lease check run
    before every commit, and the topic's partition count (None for the jobs that read Bronze)."""

    stop: threading.Event
    progress_log: ProgressLog
    guard: Callable[[], None]
    partitions: int | None


def start_query(
    spark: SparkSession,
    settings: PulseSettings,
    options: PipelineOptions,
    trigger: io.Trigger,
    run: RunContext,
) -> StreamingQuery:
    """Start the streaming query of `options.job` (`Job.query` names it)."""
    match Job(options.job):
        case Job.all:
            return stream.start_from_kafka(
                spark, settings, trigger, options.max_offsets_per_trigger, run.stop, run.progress_log,
                run.guard, run.partitions,
            )  # fmt: skip
        case Job.bronze:
            return bronze.start_kafka_to_bronze(
                spark, settings, trigger, options.max_offsets_per_trigger, run.partitions
            )
        case Job.silver | Job.gold:
            return stream.start_from_bronze(
                spark, settings, trigger, options.max_files_per_trigger, run.stop, run.progress_log, run.guard
            )


def _in_background(start: Callable[[], SparkSession]) -> Future[SparkSession]:
    """Run `start` on a daemon thread, so a failed check exits at once instead of waiting for it."""
    future: Future[SparkSession] = Future()

    def target() -> None:
        try:
            future.set_result(start())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, name="pulse-spark-start", daemon=True).start()
    return future


def configure_logging() -> None:
    """Readable, timestamped lines on stderr."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _raise_if_failed(query: StreamingQuery) -> None:
    error = query.exception()
    if error is not None:
        raise PipelineError(
            f"the {query.name} query failed: {error.desc if hasattr(error, 'desc') else error}"
        )


def run_pipeline(options: PipelineOptions, settings: PulseSettings) -> None:
    """Run one job. `once` processes what is available, then returns.

    Without `once` it runs until Ctrl-C, which lets the running micro-batch finish; the next start
    resumes from the checkpoint.
    """
    configure_logging()
    if options.job not in PIPELINE_JOBS:
        raise PipelineError(f"unknown job {options.job!r}; choose from {', '.join(PIPELINE_JOBS)}")
    job = Job(options.job)
    # A query whose sink commits without our handler (bronze's Delta sink) is stopped when the lease is
    # lost; the handlers' own check stops the others before their next commit.
    started: list[StreamingQuery] = []

    def stop_started(reason: str) -> None:
        for query in started:
            query.stop()

    # A local lake's lease is taken before Spark starts, so a refusal is the last line a user sees; a
    # cloud lake's is committed through Spark, so it waits for the session.
    try:
        preflight.check_lake(settings)
    except preflight.PreflightError as exc:
        raise PipelineError(str(exc)) from None
    leases: Leases | None = None
    if committed_by_deltalake(settings.checkpoint_path(LEASES_FOLDER)):
        leases = _take_leases(settings, job, lambda: session.result(), stop_started)
    # The Spark session starts (the slowest step of a start) while the checks run: a broker being started
    # alongside (`kafka_wait_seconds`) then costs no extra time.
    session = _in_background(lambda: get_spark(f"pulse-{options.job}", settings))
    try:
        try:
            partitions = None
            if job.reads_kafka:
                topics = preflight.check_kafka(settings, wait_s=options.kafka_wait_seconds)
                partitions = topics.get(settings.kafka_topic)
        except preflight.PreflightError as exc:
            raise PipelineError(str(exc)) from None
        if leases is None:
            leases = _take_leases(settings, job, session.result, stop_started)
        _run_holding(session.result(), settings, options, job, partitions, leases, started)
    finally:
        if leases is not None:
            leases.release()


def _take_leases(
    settings: PulseSettings, job: Job, spark: Callable[[], SparkSession], on_lost: Callable[[str], None]
) -> Leases:
    leases = Leases.on_lake(settings, f"pipeline {job.value}", CHECKPOINT_ROLES[job.query], spark)
    try:
        leases.acquire()
    except LeaseHeldError as exc:
        raise PipelineError(str(exc)) from None
    leases.start_renewing(on_lost)
    return leases


def _run_holding(
    spark: SparkSession,
    settings: PulseSettings,
    options: PipelineOptions,
    job: Job,
    partitions: int | None,
    leases: Leases,
    started: list[StreamingQuery],
) -> None:
    trigger = options.trigger
    log.info(f"lake: {settings.lake_root}; job: {job}; trigger: {trigger.describe()}")
    with ProgressLog(settings.progress_log) as progress_log:
        began = time.monotonic()
        run_context = RunContext(threading.Event(), progress_log, leases.check, partitions)
        keyed_engine = job is Job.all and settings.engine == "keyed"
        checkpoint = settings.checkpoint_path(Query.pipeline)
        refined = job is Job.all and _refine_what_split_jobs_landed(spark, settings, run_context)
        if refined and keyed_engine and io.has_checkpoint(spark, checkpoint):
            keyed.request_rebuild(spark, checkpoint, "the split jobs refined events it has not seen")
        progress = ProgressLines({Query.bronze}, progress_log)
        while True:
            if keyed_engine:
                keyed.rebuild_if_asked(spark, checkpoint)
            try:
                query = start_query(spark, settings, options, trigger, run_context)
            except engine.EngineUnavailableError as exc:
                raise PipelineError(str(exc)) from None
            started.append(query)
            try:
                if options.once:
                    _await_once(query, leases)
                else:
                    _run_continuously(query, progress, run_context.stop, leases)
            except PipelineError:
                # A batch the keyed engine could not hold exactly stops its query for a rebuild; a run
                # that lost its lease does not start again.
                if keyed_engine and keyed.rebuild_asked(spark, checkpoint) and not run_context.stop.is_set():
                    try:
                        leases.check()
                    except LeaseLostError as exc:
                        raise PipelineError(str(exc)) from None
                    continue
                raise
            if options.once and keyed_engine and keyed.rebuild_asked(spark, checkpoint):
                continue
            break
        if options.once:
            progress.log_new(query)
            seconds = time.monotonic() - began
            log.info(f"{options.job}: caught up in {seconds:.1f} s")
            progress_log.caught_up(options.job, seconds)


def _await_once(query: StreamingQuery, leases: Leases) -> None:
    try:
        query.awaitTermination()
    except StreamingQueryException as exc:
        raise PipelineError(f"the {query.name} query failed: {exc}") from None
    try:
        leases.check()
    except LeaseLostError as exc:
        raise PipelineError(str(exc)) from None
    _raise_if_failed(query)


def _refine_what_split_jobs_landed(spark: SparkSession, settings: PulseSettings, run: RunContext) -> bool:
    """Before `all` starts: refine the Bronze rows `pulse pipeline bronze` landed that `silver` did not
    refine yet, then retire the refine checkpoint, so `all` (which starts after what Bronze holds) leaves
    nothing behind, and a later `silver` starts after `all`'s commits (docs/pipeline.md, job modes).
    True when it refined rows (the keyed engine's state then has not seen them)."""
    bronze_path = settings.table_path("bronze", "events_raw")
    refine_checkpoint = settings.checkpoint_path(stream.FROM_BRONZE)
    if not io.table_exists(spark, bronze_path):
        return False
    checkpointed = io.has_checkpoint(spark, refine_checkpoint)
    if not positions.bronze_has_unrefined_rows(spark, bronze_path, checkpointed):
        return False
    log.info(
        "this lake ran the split jobs: first refining what `pulse pipeline bronze` landed "
        "(as `pulse pipeline silver --once` would)"
    )
    query = stream.start_from_bronze(
        spark, settings, io.Trigger(once=True), None, run.stop, run.progress_log, run.guard
    )
    try:
        query.awaitTermination()
    except StreamingQueryException as exc:
        raise PipelineError(f"refining the split jobs' rows failed: {exc}") from None
    _raise_if_failed(query)
    run.guard()
    positions.mark_refined(spark, bronze_path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    retired = f"{refine_checkpoint.rsplit('/', 1)[0]}/_retired/{stamp}/{stream.FROM_BRONZE}"
    if io.move_tree(spark, refine_checkpoint, retired):
        log.info(f"the refine checkpoint moved to {retired}; a later `silver` starts after `all`'s commits")
    return True


def _run_continuously(
    query: StreamingQuery, progress: ProgressLines, stop: threading.Event, leases: Leases
) -> None:
    interrupted = threading.Event()
    if threading.current_thread() is threading.main_thread():
        # PySpark's own SIGINT handler cancels every running Spark job, which would abort a micro-batch
        # half-way. A KeyboardInterrupt raised inside a py4j call breaks the gateway's connection, so the
        # first Ctrl-C only sets a flag the loop reads between calls; a second one interrupts at once.
        def on_sigint(signum: int, frame: object) -> None:
            if interrupted.is_set():
                raise KeyboardInterrupt
            interrupted.set()

        signal.signal(signal.SIGINT, on_sigint)
    try:
        while not interrupted.is_set():
            progress.log_new(query)
            try:
                leases.check()
            except LeaseLostError as exc:
                raise PipelineError(str(exc)) from None
            _raise_if_failed(query)
            if not query.isActive:
                raise PipelineError(f"the {query.name} query stopped unexpectedly")
            interrupted.wait(0.5)
        log.info("stopping: letting the running micro-batch finish (Ctrl-C again stops at once)…")
        try:
            _stop_between_batches(query, stop)
        except KeyboardInterrupt:
            log.info("stopping at once; an interrupted micro-batch is redone on the next start.")
    except KeyboardInterrupt:  # Ctrl-C where no handler of ours runs (not the main thread)
        log.info("stopping at once; an interrupted micro-batch is redone on the next start.")
    finally:
        if query.isActive:
            query.stop()
    log.info("stopped; the next start resumes from the checkpoint.")


def _stop_between_batches(
    query: StreamingQuery, stop: threading.Event, timeout_s: float = STOP_TIMEOUT_S
) -> None:
    """Stop the query while no micro-batch of it runs, waiting up to `timeout_s` for the running one.

    A query that falls behind starts its next micro-batch as soon as one ends, so there may be no idle
    moment to stop in: `stop` makes the query's handler end the query at the start of its next batch,
    before that batch writes anything (`stream.StopBeforeBatchError`).
    """
    stop.set()
    _quiet_stream_errors()
    deadline = time.monotonic() + timeout_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def _quiet_stream_errors() -> None:
    """Keep Spark and py4j from logging `stream.StopBeforeBatchError` as a failure with a stack trace."""
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    jvm = SparkContext._jvm  # type: ignore[attr-defined]
    if jvm is None:
        return
    try:
        level = jvm.org.apache.logging.log4j.Level.OFF
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(STREAM_EXECUTION_LOGGER, level)
    except Exception:  # another logging backend (Databricks): the line it logs is harmless
        log.debug("could not quiet the streaming query's error log", exc_info=True)
