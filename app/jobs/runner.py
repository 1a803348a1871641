"""Run pipeline jobs: one at a time with `--once`, or together and continuously until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from app import io, preflight
from app.jobs import bronze, gold, silver
from app.settings import PulseSettings
from app.spark import get_spark

log = logging.getLogger("pulse.pipeline")
PIPELINE_ORDER = ("bronze", "silver", "gold")
# How long Ctrl-C waits for running micro-batches before stopping them anyway.
STOP_TIMEOUT_S = 120.0


class PipelineError(RuntimeError):
    """A streaming query failed. The message carries Spark's reason."""


class ProgressLines:
    """One readable line per micro-batch for queries whose sink does not log its own (Bronze).

    It polls `recentProgress` from the driver loop rather than registering a listener, so no callback
    from the JVM can arrive after the Python side is gone.
    """

    def __init__(self, names: set[str]) -> None:
        self.names = names
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


@dataclass(frozen=True)
class PipelineOptions:
    """How to run: which jobs, once or continuously, and how often."""

    jobs: tuple[str, ...]
    once: bool = False
    trigger_seconds: float = 5.0
    max_offsets_per_trigger: int | None = None
    max_files_per_trigger: int | None = None


def _starter(name: str, options: PipelineOptions) -> Callable[[SparkSession, PulseSettings], StreamingQuery]:
    trigger = io.Trigger(once=options.once, interval_s=options.trigger_seconds)
    if name == "bronze":
        return lambda spark, settings: bronze.start(spark, settings, trigger, options.max_offsets_per_trigger)
    if name == "silver":
        return lambda spark, settings: silver.start(spark, settings, trigger, options.max_files_per_trigger)
    if name == "gold":
        return lambda spark, settings: gold.start(spark, settings, trigger, options.max_files_per_trigger)
    raise ValueError(f"unknown job {name!r}; choose from {', '.join(PIPELINE_ORDER)}")


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


def run(options: PipelineOptions, settings: PulseSettings) -> None:
    """Run the jobs. `once` runs them one after the other, each to the end of its input, then returns.

    Without `once` they all run in one Spark session until Ctrl-C, which stops them cleanly; the
    next start resumes from their checkpoints.
    """
    configure_logging()
    jobs = [job for job in PIPELINE_ORDER if job in options.jobs]
    try:
        preflight.check_lake(settings)
        if "bronze" in jobs:
            preflight.check_kafka(settings)
    except preflight.PreflightError as exc:
        raise PipelineError(str(exc)) from None
    starters = [(job, _starter(job, options)) for job in jobs]
    spark = get_spark("pulse-" + "-".join(jobs), settings)
    progress = ProgressLines({"bronze"})
    trigger = io.Trigger(options.once, options.trigger_seconds).describe()
    log.info(f"lake: {settings.lake_root}; jobs: {', '.join(jobs)}; trigger: {trigger}")
    if options.once:
        _run_once(spark, settings, starters, progress)
    else:
        _run_continuously(spark, settings, starters, progress)


def _run_once(
    spark: SparkSession,
    settings: PulseSettings,
    starters: list[tuple[str, Callable[[SparkSession, PulseSettings], StreamingQuery]]],
    progress: ProgressLines,
) -> None:
    for job, start in starters:
        began = time.monotonic()
        query = start(spark, settings)
        try:
            query.awaitTermination()
        except StreamingQueryException as exc:
            raise PipelineError(f"the {job} query failed: {exc}") from None
        _raise_if_failed(query)
        progress.log_new(query)
        log.info(f"{job}: caught up in {time.monotonic() - began:.1f} s")


def _run_continuously(
    spark: SparkSession,
    settings: PulseSettings,
    starters: list[tuple[str, Callable[[SparkSession, PulseSettings], StreamingQuery]]],
    progress: ProgressLines,
) -> None:
    queries = [start(spark, settings) for _, start in starters]
    if threading.current_thread() is threading.main_thread():
        # PySpark's own SIGINT handler cancels every running Spark job, which would abort a micro-batch
        # half-way; with Python's default handler, Ctrl-C only raises KeyboardInterrupt here.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            for query in queries:
                progress.log_new(query)
                _raise_if_failed(query)
                if not query.isActive:
                    raise PipelineError(f"the {query.name} query stopped unexpectedly")
            time.sleep(1)
    except KeyboardInterrupt:
        log.info("stopping: letting the running micro-batches finish (Ctrl-C again stops at once)…")
        try:
            _stop_between_batches(queries)
        except KeyboardInterrupt:
            log.info("stopping at once; an interrupted micro-batch is redone on the next start.")
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
    log.info("stopped; the next start resumes from the checkpoints.")


def _stop_between_batches(queries: list[StreamingQuery], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop each query while no micro-batch of it runs, waiting up to `timeout_s` for the running ones."""
    deadline = time.monotonic() + timeout_s
    for query in queries:
        while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
            time.sleep(0.2)
        query.stop()
