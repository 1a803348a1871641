"""The one module that opens sources and sinks, batch and stream.

Jobs describe what they read and write with the typed configs below; nothing else in Pulse calls
`readStream`, `writeStream` or writes a Delta table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pulse.preflight import on_local_disk
from pulse.spark import on_databricks
from pulse_core.settings import PulseSettings

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable as DeltaRsTable
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery
    from pyspark.sql.types import StructType

log = logging.getLogger("pulse.io")
# A write that loses an optimistic-concurrency race (say, to a concurrent OPTIMIZE) is retried this often.
CONFLICT_RETRIES = 5
_CONFLICTS = ("DELTA_CONCURRENT", "ConcurrentAppendException", "ConcurrentDeleteReadException",
              "ConcurrentDeleteDeleteException", "ConcurrentTransactionException")  # fmt: skip


def is_write_conflict(error: BaseException) -> bool:
    """True when Delta (Spark's or delta-rs's) refused a commit because another writer changed the files
    it read."""
    return type(error).__name__ == "CommitFailedError" or any(marker in str(error) for marker in _CONFLICTS)


def retry_on_conflict(write: Callable[[], object], what: str, retries: int = CONFLICT_RETRIES) -> int:
    """Run `write`, redoing it when it loses a commit race. Returns how many retries it took.

    Only for writes that compute their whole result again when redone (Pulse's Gold MERGEs set absolute
    values), so a retry can never count anything twice.
    """
    for attempt in range(retries + 1):
        try:
            write()
            return attempt
        except Exception as exc:
            if attempt == retries or not is_write_conflict(exc):
                raise
            log.warning(f"{what}: a concurrent commit changed the files it read; retrying ({attempt + 1})")
            time.sleep(0.2 * (attempt + 1))
    return retries


@dataclass(frozen=True)
class Trigger:
    """When a streaming query runs: `once` processes what is available then stops; else every `interval_s`.

    `interval_s` is the one default of the trigger interval: `pulse pipeline --trigger-seconds` and the
    runner's options read it from here.
    """

    once: bool = False
    interval_s: float = 1.0

    def describe(self) -> str:
        return "availableNow" if self.once else f"every {self.interval_s:g} s"


@dataclass(frozen=True)
class KafkaSource:
    """The events topic, with the connection settings and how much to read per trigger."""

    bootstrap: str
    topic: str
    options: dict[str, str] = field(default_factory=dict)
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = None
    records_per_task: int | None = None

    @classmethod
    def from_settings(
        cls, settings: PulseSettings, max_offsets_per_trigger: int | None = None
    ) -> KafkaSource:
        """Connection options from settings; SASL credentials are read from the settings at run time."""
        options = settings.kafka_spark_options(databricks=on_databricks())
        if settings.kafka_group_prefix:
            options["groupIdPrefix"] = settings.kafka_group_prefix
        return cls(
            settings.kafka_bootstrap,
            settings.kafka_topic,
            options,
            "earliest",
            max_offsets_per_trigger,
            settings.kafka_records_per_task,
        )


@dataclass(frozen=True)
class StreamSink:
    """Where a streaming query writes and keeps its checkpoint."""

    name: str
    checkpoint: str
    trigger: Trigger


def read_kafka_stream(spark: SparkSession, source: KafkaSource) -> DataFrame:
    """The topic as an unbounded stream of Kafka records (key and value as binary)."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", source.bootstrap)
        .option("subscribe", source.topic)
        .option("startingOffsets", source.starting_offsets)
        .options(**source.options)
    )
    if source.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(source.max_offsets_per_trigger))
    if source.records_per_task:
        # Spark splits a longer offset range over several tasks: one hot partition no longer bounds a batch.
        reader = reader.option("maxRecordsPerPartition", str(source.records_per_task))
    return reader.load()


def read_delta_stream(
    spark: SparkSession,
    path: str,
    max_files_per_trigger: int | None = None,
    starting_version: int | None = None,
) -> DataFrame:
    """A Delta table as a stream of its appended rows; a query without a checkpoint starts with the
    table's snapshot, or with the changes from `starting_version` on when one is given."""
    reader = spark.readStream.format("delta")
    if max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", str(max_files_per_trigger))
    if starting_version is not None:
        reader = reader.option("startingVersion", str(starting_version))
    return reader.load(path)


def has_checkpoint(spark: SparkSession, checkpoint: str) -> bool:
    """True when a streaming query's checkpoint has planned at least one batch (a query started from it
    resumes there, and ignores its source's starting position)."""
    return any(name.isdigit() for name in list_names(spark, f"{checkpoint.rstrip('/')}/offsets"))


# The MERGE aliases: `t` the target table, `s` the source rows. Only this module writes SQL with them.
TARGET, SOURCE = "t", "s"


def sql_timestamp(moment: datetime) -> str:
    """A SQL timestamp literal for a UTC instant (the session time zone is UTC)."""
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


@dataclass(frozen=True)
class TimeRange:
    """Rows whose `column` is in `[low, high)` (no upper bound when `high` is None).

    A read's filter, and a MERGE's prune: the part of the target a MERGE can touch, which lets Delta
    skip every other file.
    """

    column: str
    low: datetime
    high: datetime | None = None

    def sql(self, alias: str | None = None) -> str:
        """The condition as SQL, on `alias.column` when an alias is given."""
        column = f"{alias}.{self.column}" if alias else self.column
        condition = f"{column} >= {sql_timestamp(self.low)}"
        if self.high is not None:
            condition += f" AND {column} < {sql_timestamp(self.high)}"
        return condition

    def delta_rs_sql(self) -> str:
        """The condition as a delta-rs predicate. Its check of written rows compares without coercion, so
        the bounds are ISO strings (delta-rs parses them as the column's UTC timestamps)."""
        condition = f"{self.column} >= '{_iso(self.low)}'"
        if self.high is not None:
            condition += f" AND {self.column} < '{_iso(self.high)}'"
        return condition

    def arrow(self) -> pc.Expression:
        """The condition as a pyarrow dataset filter (what deltalake's reads push down)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        utc = pa.timestamp("us", tz="UTC")
        condition = pc.field(self.column) >= pa.scalar(self.low, type=utc)
        if self.high is not None:
            condition = condition & (pc.field(self.column) < pa.scalar(self.high, type=utc))
        return condition

    def holds(self, other: TimeRange) -> bool:
        """True when every row of `other` is a row of this range (same column, bounds inside these)."""
        if other.column != self.column or other.low < self.low:
            return False
        return self.high is None or (other.high is not None and other.high <= self.high)

    def covering(self, rows: pa.Table) -> TimeRange:
        """This range widened, if need be, to hold every row of `rows` (by their `column`)."""
        import pyarrow.compute as pc

        if not rows.num_rows:
            return self
        first, last = pc.min_max(rows[self.column]).values()
        low = min(self.low, first.as_py())
        high = None if self.high is None else max(self.high, last.as_py() + timedelta(microseconds=1))
        return TimeRange(self.column, low, high)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _merge_condition(keys: tuple[str, ...], prune: TimeRange) -> str:
    return " AND ".join(f"{TARGET}.{key} = {SOURCE}.{key}" for key in keys) + f" AND {prune.sql(TARGET)}"


def read_delta_range(spark: SparkSession, path: str, rows: TimeRange) -> DataFrame:
    """The rows of a Delta table in a time range."""
    return read_delta(spark, path).where(rows.sql())


def read_delta(spark: SparkSession, path: str) -> DataFrame:
    """A Delta table as a batch DataFrame."""
    return spark.read.format("delta").load(path)


def read_arrow(
    spark: SparkSession | None,
    path: str,
    schema: pa.Schema,
    rows: TimeRange | None = None,
    with_deltalake: bool | None = None,
) -> pa.Table:
    """A Delta table's `schema` columns (its rows in `rows`, if given) as an Arrow table on the driver,
    cast to `schema`. Read with deltalake (`with_deltalake`, by default for a table on local disk): well
    under a second where Spark's reads cost seconds on a cold session; else with Spark."""
    if on_local_disk(path) if with_deltalake is None else with_deltalake:
        from deltalake import DeltaTable as LocalTable

        dataset = LocalTable(path).to_pyarrow_dataset()
        table = dataset.to_table(columns=schema.names, filter=rows.arrow() if rows else None)
    else:
        assert spark is not None, "a cloud table is read with Spark"
        frame = read_delta(spark, path) if rows is None else read_delta_range(spark, path, rows)
        table = frame.select(*schema.names).toArrow()
    return table.select(schema.names).cast(schema)


def newest_instant(
    spark: SparkSession | None, path: str, column: str, with_deltalake: bool | None = None
) -> datetime | None:
    """The newest value of a timestamp column in a Delta table (None when it has no rows), read as
    `read_arrow` reads."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if on_local_disk(path) if with_deltalake is None else with_deltalake:
        from deltalake import DeltaTable as LocalTable

        # The files' statistics name the newest value without reading the column: only rows within a
        # millisecond of it are read (Spark and delta-rs keep timestamp statistics to the millisecond).
        files = pa.table(LocalTable(path).get_add_actions(flatten=True))
        stat = f"max.{column}"
        near = None
        if files.num_rows and stat in files.column_names and files[stat].null_count == 0:
            near = TimeRange(column, pc.max(files[stat]).as_py() - timedelta(milliseconds=1))
        schema = pa.schema([(column, pa.timestamp("us", tz="UTC"))])
        newest = pc.max(read_arrow(spark, path, schema, near, True)[column]).as_py()
        if newest is None and near is not None:  # statistics count deleted rows too: read it all
            newest = pc.max(read_arrow(spark, path, schema, None, True)[column]).as_py()
        return newest
    from pyspark.sql import functions as F

    assert spark is not None, "a cloud table is read with Spark"
    newest = read_delta(spark, path).agg(F.date_format(F.max(column), INSTANT_TEXT)).first()
    return parse_instant(newest[0]) if newest and newest[0] else None


def ensure_delta_table(
    spark: SparkSession,
    path: str,
    schema: StructType,
    partition_by: tuple[str, ...] = (),
    cluster_by: tuple[str, ...] = (),
    properties: dict[str, str] | None = None,
) -> None:
    """Create an empty Delta table at `path` unless one exists, so streams can start before data arrives.

    A local table is looked for and created with deltalake, without the Spark jobs that loading the
    table's snapshot costs on a cold session (docs/pipeline.md, start-up). Both write the same table:
    protocol (1, 2), the same schema and properties. Clustering is Spark's alone.
    """
    from delta.tables import DeltaTable

    if on_local_disk(path) and not cluster_by:
        _create_table_on_disk(path, schema, partition_by, properties or {})
        return
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    for key, value in (properties or {}).items():
        builder = builder.property(key, value)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    if cluster_by:
        builder = builder.clusterBy(*cluster_by)
    try:
        builder.execute()
    except Exception as exc:
        # A process killed while creating the table leaves a `_delta_log` holding only temporary files,
        # which Delta then refuses to create over. No version was ever committed: discard it, create again.
        if "DELTA_TABLE_NOT_FOUND" not in str(exc) or DeltaTable.isDeltaTable(spark, path):
            raise
        log.warning(f"{path}: discarding a table creation that was interrupted before its first commit")
        _delete_tree(spark, f"{path.rstrip('/')}/_delta_log")
        builder.execute()


def _create_table_on_disk(
    path: str, schema: StructType, partition_by: tuple[str, ...], properties: dict[str, str]
) -> None:
    from deltalake import DeltaTable as LocalTable
    from pyspark.sql.pandas.types import to_arrow_schema

    if table_on_disk_exists(path):
        return
    # Timestamps with a zone are Delta's `timestamp` (a zone-less one would be `timestamp_ntz`, a table
    # feature Spark's tables here do not have).
    arrow = to_arrow_schema(schema, timezone="UTC")
    LocalTable.create(
        path, arrow, mode="ignore", partition_by=list(partition_by) or None, configuration=properties
    )


def table_on_disk_exists(path: str) -> bool:
    """True when a local folder holds a Delta table with at least one commit."""
    from deltalake import DeltaTable as LocalTable

    return LocalTable.is_deltatable(path)


def _hadoop_path(spark: SparkSession, path: str) -> tuple[object, object]:
    """The Hadoop ``Path`` of ``path`` and its file system (abfss:// on Databricks, the local disk here)."""
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
    return target, target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[union-attr]


def path_exists(spark: SparkSession, path: str) -> bool:
    """True when a file or folder exists (on the lake's file system)."""
    target, fs = _hadoop_path(spark, path)
    return bool(fs.exists(target))  # type: ignore[attr-defined]


def list_names(spark: SparkSession, path: str) -> list[str]:
    """The names of the entries of a folder (none when it does not exist), on any Hadoop file system."""
    target, fs = _hadoop_path(spark, path)
    if not fs.exists(target):  # type: ignore[attr-defined]
        return []
    return [status.getPath().getName() for status in fs.listStatus(target)]  # type: ignore[attr-defined]


def read_small_file(spark: SparkSession, path: str) -> str | None:
    """A small text file's contents (a checkpoint's offsets entry), or None when it is absent."""
    target, fs = _hadoop_path(spark, path)
    if not fs.exists(target):  # type: ignore[attr-defined]
        return None
    stream = fs.open(target)  # type: ignore[attr-defined]
    try:
        jvm = spark.sparkContext._jvm
        data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)  # type: ignore[union-attr]
    finally:
        stream.close()
    return bytes(data).decode("utf-8")


def write_small_file(spark: SparkSession, path: str, text: str) -> None:
    """Write a small text file whole, replacing what was there."""
    target, fs = _hadoop_path(spark, path)
    stream = fs.create(target, True)  # type: ignore[attr-defined]
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def _delete_tree(spark: SparkSession, path: str) -> None:
    target, fs = _hadoop_path(spark, path)
    fs.delete(target, True)  # type: ignore[attr-defined]


def move_tree(spark: SparkSession, source: str, target: str) -> bool:
    """Move a folder (a checkpoint) to ``target``, creating its parent. False when ``source`` is absent.

    A rename, not a copy: on ADLS Gen2 (hierarchical namespace) a folder moves in one atomic step.

    Raises:
        FileExistsError: If ``target`` exists already (a move never merges into, or replaces, a folder).
        OSError: If the file system refused the rename.
    """
    source_path, fs = _hadoop_path(spark, source)
    target_path, _ = _hadoop_path(spark, target)
    if not fs.exists(source_path):  # type: ignore[attr-defined]
        return False
    if fs.exists(target_path):  # type: ignore[attr-defined]
        raise FileExistsError(f"{target} exists already; not moving {source} onto it")
    fs.mkdirs(target_path.getParent())  # type: ignore[attr-defined]
    if not fs.rename(source_path, target_path):  # type: ignore[attr-defined]
        raise OSError(f"the file system refused to move {source} to {target}")
    return True


def _start(writer, sink: StreamSink) -> StreamingQuery:
    writer = writer.queryName(sink.name).option("checkpointLocation", sink.checkpoint)
    if sink.trigger.once:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{sink.trigger.interval_s} seconds")
    return writer.start()


def write_delta_stream(
    frame: DataFrame, path: str, sink: StreamSink, partition_by: tuple[str, ...] = ()
) -> StreamingQuery:
    """Append a stream to a Delta table; the checkpoint plus the Delta sink make it exactly-once."""
    writer = frame.writeStream.format("delta").outputMode("append").option("path", path)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    return _start(writer, sink)


def write_foreach_batch(
    frame: DataFrame, handler: Callable[[DataFrame, int], None], sink: StreamSink
) -> StreamingQuery:
    """Hand every micro-batch to `handler(batch, batch_id)`; the handler's writes must be idempotent."""
    return _start(frame.writeStream.foreachBatch(handler), sink)


def append(frame: DataFrame, path: str, user_metadata: str, txn: tuple[str, int] | None = None) -> None:
    """Append rows in one commit that carries `user_metadata`.

    With `txn` (`app_id`, `version`), Delta itself skips a replay of the same pair. That check replays
    the table's log to find its transactions (a state reconstruction, about a second a commit on two
    cores), so the pipeline asks for it only on the first batch after a start (docs/pipeline.md).
    An append reads nothing from the table, so it never conflicts with a concurrent OPTIMIZE.
    """
    writer = frame.write.format("delta").mode("append").option("userMetadata", user_metadata)
    if txn is not None:
        writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    writer.save(path)


def append_with_delta_rs(
    path: str,
    rows: pa.Table,
    user_metadata: str,
    txn: tuple[str, int],
    storage_options: Mapping[str, str] | None = None,
) -> bool:
    """`append` without Spark: delta-rs commits the rows from the driver (tens of ms instead of a Spark job
    of half a second or more). Returns False when the table already records `txn` (`app_id`, `version`)
    or a later version of that app: Delta's own idempotent-append check, as Spark's `txnAppId` does.
    The commit records `txn` and carries `user_metadata`. `storage_options` authenticate delta-rs to a
    cloud lake (`pulse.lake_access`).
    """
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

    table = DeltaTable(path, storage_options=_options(storage_options))
    done = table.transaction_version(txn[0])
    if done is not None and done >= txn[1]:
        return False
    commit = CommitProperties(
        custom_metadata={"userMetadata": user_metadata}, app_transactions=[Transaction(txn[0], txn[1])]
    )
    write_deltalake(table, rows, mode="append", commit_properties=commit)
    return True


def commit_history(spark: SparkSession | None, path: str, limit: int | None = 100) -> list[Commit]:
    """A table's newest commits (all when `limit` is None), newest first: version, operation,
    `userMetadata` and commit time; none when it has no commit yet.

    Delta reads the history from the commit files on the driver, without replaying the table's state; a
    table on local disk's is read with deltalake, which skips the Spark jobs (seconds on a cold session),
    and `spark` may then be None.
    """
    if on_local_disk(path):
        from deltalake import DeltaTable as LocalTable

        if not table_on_disk_exists(path):
            return []
        entries = LocalTable(path).history(limit)
        return [
            Commit(int(e["version"]), str(e.get("operation")), e.get("userMetadata"), _committed_at(e))
            for e in entries
        ]
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    assert spark is not None, "a cloud table's history is read with Spark"
    if not is_delta_table(spark, path):
        return []
    table = DeltaTable.forPath(spark, path)
    history = table.history(limit) if limit else table.history()
    stamp = F.date_format("timestamp", INSTANT_TEXT).alias("at")
    rows = history.select("version", "operation", "userMetadata", stamp).collect()
    return [Commit(int(row[0]), str(row[1]), row[2], parse_instant(row[3])) for row in rows]


# Instants leave Spark as text in the session's time zone (UTC, `pulse.spark`): a Row's datetime would
# come back in the driver's local time zone.
INSTANT_TEXT = "yyyy-MM-dd HH:mm:ss.SSSSSS"


def parse_instant(text: str) -> datetime:
    """The UTC instant an `INSTANT_TEXT` string from Spark denotes."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def _committed_at(entry: Mapping[str, object]) -> datetime | None:
    stamp = entry.get("timestamp")
    return datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, int | float) else None


@dataclass(frozen=True)
class Commit:
    """One entry of a Delta table's history."""

    version: int
    operation: str
    user_metadata: str | None
    committed_at: datetime | None = None


def kafka_high_water(
    spark: SparkSession, path: str, partition: str, offset: str, where: tuple[str, str] | None = None
) -> dict[int, int]:
    """The highest Kafka offset per partition that a table holds (`where`: a column that must equal a
    value, such as Bronze's topic). Reads two columns; a local table's with deltalake."""
    if on_local_disk(path):
        import pyarrow.compute as pc
        from deltalake import DeltaTable as LocalTable

        if not table_on_disk_exists(path):
            return {}
        columns = [partition, offset] + ([where[0]] if where else [])
        table = LocalTable(path).to_pyarrow_dataset().to_table(columns=columns)
        if where:
            table = table.filter(pc.equal(table[where[0]], where[1]))
        grouped = table.select([partition, offset]).group_by(partition).aggregate([(offset, "max")])
        return dict(zip(grouped[partition].to_pylist(), grouped[f"{offset}_max"].to_pylist(), strict=True))
    from pyspark.sql import functions as F

    frame = read_delta(spark, path)
    if where:
        frame = frame.where(F.col(where[0]) == where[1])
    rows = frame.groupBy(partition).agg(F.max(offset)).collect()
    return {int(row[0]): int(row[1]) for row in rows}


# A lease table is only a log (`commit_lease_record`): a day of it is far more than a lease replays.
# (Spark requires the log's retention to be at least the removed files', and the lease writes no file.)
LEASE_TABLE_PROPERTIES = {
    "delta.logRetentionDuration": "interval 1 days",
    "delta.deletedFileRetentionDuration": "interval 1 days",
    "delta.checkpointInterval": "100",
}
_LEASE_TABLES: set[str] = set()  # lease tables this process made sure exist


def deltalake_installed() -> bool:
    """True where the `deltalake` package is installed (not in the wheel's base install, as on a job
    cluster, where Spark does all Delta I/O)."""
    import importlib.util

    return importlib.util.find_spec("deltalake") is not None


def commit_lease_record(spark: SparkSession | None, path: str, user_metadata: str) -> None:
    """One commit of a lease table (`pulse.jobs.lease`), its record in the commit's `userMetadata`:
    through delta-rs when `spark` is None (a local lake), else through Spark.

    delta-rs commits it as an empty append: no data file, so a local lease table is nothing but its log,
    which expires after a day (`LEASE_TABLE_PROPERTIES`); appends never conflict, so racing commits each
    land at a version of their own. Spark does not commit an empty append, so its commit is a one-row
    overwrite: the snapshot stays one file, `pulse maintenance` vacuums the replaced ones, and of two
    racing overwrites one fails as a write conflict (`is_write_conflict`) and the lease decides again.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField("holder", StringType())])
    if path not in _LEASE_TABLES:
        try:
            if spark is None:
                _create_table_on_disk(path, schema, (), LEASE_TABLE_PROPERTIES)
            else:
                _create_with_spark(spark, path, schema, LEASE_TABLE_PROPERTIES)
        except Exception:
            if not _lease_table_exists(spark, path):
                raise  # not another process creating it at the same instant
        _LEASE_TABLES.add(path)
    if spark is None:
        import pyarrow as pa
        from deltalake import CommitProperties, write_deltalake

        commit = CommitProperties(custom_metadata={"userMetadata": user_metadata})
        write_deltalake(path, pa.table({"holder": pa.array([], pa.string())}), mode="append",
                        commit_properties=commit)  # fmt: skip
        return
    row = spark.createDataFrame([("lease",)], schema)
    row.write.format("delta").mode("overwrite").option("userMetadata", user_metadata).save(path)


def _create_with_spark(
    spark: SparkSession, path: str, schema: StructType, properties: dict[str, str]
) -> None:
    from delta.tables import DeltaTable

    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    for key, value in properties.items():
        builder = builder.property(key, value)
    builder.execute()


def _lease_table_exists(spark: SparkSession | None, path: str) -> bool:
    return table_on_disk_exists(path) if spark is None else is_delta_table(spark, path)


def lease_history(spark: SparkSession | None, path: str, limit: int) -> list[str | None]:
    """The `userMetadata` of a lease table's newest commits, newest first; [] before its first commit.
    Read with deltalake when `spark` is None, else with Spark."""
    if not _lease_table_exists(spark, path):
        return []
    if spark is None:
        from deltalake import DeltaTable as LocalTable

        return [entry.get("userMetadata") for entry in LocalTable(path).history(limit)]
    from delta.tables import DeltaTable

    return [row[0] for row in DeltaTable.forPath(spark, path).history(limit).select("userMetadata").collect()]


def merge_upsert(
    spark: SparkSession, path: str, source: DataFrame, keys: tuple[str, ...], prune: TimeRange
) -> None:
    """Insert new rows and overwrite existing ones by `keys`; `prune` bounds the target rows it touches."""
    from delta.tables import DeltaTable

    condition = _merge_condition(keys, prune)
    retry_on_conflict(
        lambda: (
            DeltaTable.forPath(spark, path)
            .alias(TARGET)
            .merge(source.alias(SOURCE), condition)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        ),
        f"MERGE into {path}",
    )


def merge_replace(
    spark: SparkSession, path: str, rows: DataFrame, stale: DataFrame, keys: tuple[str, ...], prune: TimeRange
) -> None:
    """In one atomic MERGE: upsert `rows` by `keys` and delete the `stale` rows."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    source = rows.withColumn("_stale", F.lit(False)).unionByName(stale.withColumn("_stale", F.lit(True)))
    condition = _merge_condition(keys, prune)
    columns: dict[str, str | Column] = {name: f"{SOURCE}.{name}" for name in rows.columns}
    retry_on_conflict(
        lambda: (
            DeltaTable.forPath(spark, path)
            .alias(TARGET)
            .merge(source.alias(SOURCE), condition)
            .whenMatchedDelete(condition=f"{SOURCE}._stale")
            .whenMatchedUpdate(set=columns)
            .whenNotMatchedInsert(condition=f"NOT {SOURCE}._stale", values=columns)
            .execute()
        ),
        f"MERGE into {path}",
    )


# Table features delta-rs (the `deltalake` package) can commit to; Spark may add others (clustering).
_DELTA_RS_WRITER_FEATURES = {"appendOnly", "invariants", "checkConstraints", "changeDataFeed",
                          "generatedColumns", "timestampNtz"}  # fmt: skip


def delta_rs_refusal(path: str, storage_options: Mapping[str, str] | None = None) -> str | None:
    """Why delta-rs cannot MERGE into the table at `path` (features it does not write), or None."""
    from deltalake import DeltaTable

    protocol = DeltaTable(path, storage_options=_options(storage_options)).protocol()
    unsupported = sorted(set(protocol.writer_features or ()) - _DELTA_RS_WRITER_FEATURES)
    if unsupported:
        return f"it uses table features delta-rs does not write ({', '.join(unsupported)})"
    reader, writer = protocol.min_reader_version, protocol.min_writer_version
    if writer > 7 or reader > 3:
        return f"its protocol (reader {reader}, writer {writer}) is newer than delta-rs writes"
    return None


@dataclass(frozen=True)
class WrittenRange:
    """What a delta-rs MERGE left in its table's range, and the commit that left it there."""

    version: int
    user_metadata: str
    range: TimeRange
    rows: pa.Table


def merge_with_delta_rs(
    path: str,
    rows: pa.Table,
    keys: tuple[str, ...],
    prune: TimeRange,
    user_metadata: str,
    stale: pa.Table | None = None,
    storage_options: Mapping[str, str] | None = None,
    written: dict[str, WrittenRange] | None = None,
) -> None:
    """The Gold MERGE without Spark: delta-rs commits it from the driver in ~0.1 s instead of ~3 s.

    Same result as `merge_upsert`/`merge_replace`: upsert `rows` by `keys` and, in the same commit,
    delete the `stale` rows; `prune` bounds the target rows it can match. The commit carries
    `user_metadata` as Spark's would. A lost commit race is redone (the rows are absolute values).

    It is not delta-rs's MERGE: that writes its files with strings typed as Arrow string views (its scan
    forces view types, and the Parquet files record the Arrow schema), and pyarrow cannot compare those
    with a string, so `DeltaTable.to_pyarrow_table(filters=[("video_id", "=", ...)])` failed on every
    Gold table. Instead the range's rows are read, those whose keys the batch sets or deletes are
    dropped, the batch's rows are added, and one overwrite with the range as its predicate replaces the
    range (`replaceWhere`): delta-rs writes that with the table's own types. The write is checked against
    the version read, so a concurrent OPTIMIZE makes it fail and be redone, never lose or double a row.

    The range is written unsorted: no reader relies on the order, delta-rs's write does not keep the order
    of a table of several chunks anyway, and at a large audience, where every open session is in
    `gold.user_sessions`' range, the sort was one more copy of every row (`benchmarks/sessions_merge.py`).

    With `written` (the caller's, kept from batch to batch), each MERGE records there what it left in its
    range, and the next MERGE into the same table starts from that instead of reading the range again,
    when the recorded commit is still the table's newest and the new range lies inside the recorded one.
    Any other commit in between (a compaction, another writer) makes it read the range.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    if not rows.num_rows and (stale is None or not stale.num_rows):
        return  # nothing changes (a MERGE of no rows commits nothing either)
    changed = rows.select(list(keys))
    if stale is not None and stale.num_rows:
        changed = pa.concat_tables([changed, stale.select(list(keys)).cast(changed.schema)])
    # A source row outside `prune` matches nothing in Spark's MERGE and is inserted: the replaced range
    # must hold it too (delta-rs refuses to write a row its predicate does not cover).
    replaced = prune.covering(rows)
    commit = CommitProperties(custom_metadata={"userMetadata": user_metadata})

    def replace() -> None:
        table = DeltaTable(path, storage_options=_options(storage_options))
        held = _still_held(table, written.get(path) if written is not None else None, replaced)
        if held is None:
            current = table.to_pyarrow_table(filters=replaced.arrow()).select(rows.column_names)
        else:
            current = held.filter(replaced.arrow())
        current = current.cast(rows.schema)
        # Rows outside `prune` (inside the widened range) are kept as they are: only `prune` can match.
        matchable = current.filter(prune.arrow())
        kept = pa.concat_tables(
            [
                current.filter(pc.invert(prune.arrow())),
                matchable.join(changed, list(keys), join_type="left anti").select(rows.column_names),
            ]
        )
        result = pa.concat_tables([kept, rows])
        if written is not None:
            written.pop(path, None)  # until this write is known to have committed
        write_deltalake(
            table, result, mode="overwrite", predicate=replaced.delta_rs_sql(), commit_properties=commit
        )
        if written is not None:
            # The write leaves `table` at the version it committed.
            written[path] = WrittenRange(table.version(), user_metadata, replaced, result)

    retry_on_conflict(replace, f"MERGE into {path} (delta-rs)")


def _still_held(table: DeltaRsTable, held: WrittenRange | None, wanted: TimeRange) -> pa.Table | None:
    """The rows a MERGE recorded in `held`, when they are still `table`'s in the range `wanted`: its
    commit is the table's newest (by version, and by the metadata it carried), and `wanted` lies inside
    the range it replaced. Otherwise None: the range must be read."""
    if held is None or not held.range.holds(wanted) or table.version() != held.version:
        return None
    newest = table.history(1)
    if not newest or newest[0].get("userMetadata") != held.user_metadata:
        return None
    return held.rows


def _options(storage_options: Mapping[str, str] | None) -> dict[str, str] | None:
    """delta-rs storage options as the dict its calls take (None: a local lake, or the environment's)."""
    return dict(storage_options) if storage_options else None


def delete_where(spark: SparkSession, path: str, condition: str) -> None:
    """Delete the rows of a Delta table that match a SQL condition."""
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, path).delete(condition)


def replace_all(frame: DataFrame, path: str) -> None:
    """Replace a Delta table's rows with `frame` in one commit (readers see the old or the new rows)."""
    frame.write.format("delta").mode("overwrite").save(path)


def file_count(spark: SparkSession, path: str) -> int:
    """How many data files the current version of a Delta table has."""
    return int(spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("numFiles").first()[0])  # type: ignore[index]


def optimize(spark: SparkSession, path: str) -> None:
    """Compact small files (and recluster a clustered table)."""
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, path).optimize().executeCompaction()


def vacuum(spark: SparkSession, path: str, retention_hours: float) -> None:
    """Delete files no version within `retention_hours` needs any more."""
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, path).vacuum(retention_hours)


def table_exists(spark: SparkSession, path: str) -> bool:
    """True when `path` holds a Delta table with at least one commit (a local one asked with deltalake)."""
    return table_on_disk_exists(path) if on_local_disk(path) else is_delta_table(spark, path)


def is_delta_table(spark: SparkSession, path: str) -> bool:
    """True when `path` holds a Delta table."""
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))
