"""The lake's tables, declared once: name, layer, columns, keys, time columns, partitioning, properties.

Every other description of a table is derived from this one: the Spark schemas (`pulse.tables`), the
Arrow schemas (`Table.arrow_schema`: the driver's appends and MERGEs, the dashboard's reads), the table
paths (`PulseSettings.table_path`), the MERGE keys, the dashboard's time filters and freshness column,
and the keys the tests' oracle compares by. docs/pipeline.md says what each layer's tables hold.

No Spark and no Arrow at import time: the dashboard image has no Spark, and the settings import this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pyarrow as pa

Layer = Literal["bronze", "silver", "gold"]
Kind = Literal["string", "binary", "int", "long", "double", "boolean", "timestamp", "date"]


@dataclass(frozen=True)
class Column:
    """One column: its name and its type, in the catalogue's own words (`Kind`)."""

    name: str
    kind: Kind


@dataclass(frozen=True)
class Table:
    """One Delta table of the lake.

    Attributes:
        name: The table's folder name in its layer (`<lake>/<layer>/<name>`).
        layer: bronze, silver or gold.
        columns: The columns, in order; every column is nullable.
        keys: The columns one row is identified by (Silver: `event_id`; Gold: the MERGE keys).
        time_column: When a row happened: time filters and pruning use it.
        end_column: When a row's span ends (a window's or a session's end): how fresh a table is.
        spans: True when a row covers [time_column, end_column] and a time filter keeps every row that
            overlaps the range (sessions); False when it is placed by `time_column` alone (windows).
        partition_by: Partition columns.
        cluster_by: Liquid clustering columns (none today: see the note above Gold).
        checkpoint_interval: Commits between Delta log checkpoints. They differ per table so the
            tables' checkpoints (the only slow commits) fall on different micro-batches.
    """

    name: str
    layer: Layer
    columns: tuple[Column, ...]
    keys: tuple[str, ...] = ()
    time_column: str | None = None
    end_column: str | None = None
    spans: bool = False
    partition_by: tuple[str, ...] = ()
    cluster_by: tuple[str, ...] = ()
    checkpoint_interval: int = 10
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {column.name: column for column in self.columns}
        named = (*self.keys, *self.partition_by, *self.cluster_by, self.time_column, self.end_column)
        unknown = sorted({name for name in named if name is not None} - by_name.keys())
        if unknown:
            raise ValueError(f"table {self.layer}.{self.name} names columns it does not have: {unknown}")
        object.__setattr__(self, "_by_name", by_name)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        """One column by name (KeyError when the table has none of that name)."""
        return self._by_name[name]

    @property
    def time_bounds(self) -> tuple[str, str]:
        """(lower, upper): a row is in [start, end) when `lower >= start` and `upper < end`."""
        if self.time_column is None:
            raise ValueError(f"table {self.layer}.{self.name} has no time column")
        lower = self.end_column if self.spans and self.end_column else self.time_column
        return lower, self.time_column

    @property
    def freshness_column(self) -> str:
        """The column whose newest value says how fresh the table is: where its rows end."""
        column = self.end_column or self.time_column
        if column is None:
            raise ValueError(f"table {self.layer}.{self.name} has no time column")
        return column

    @property
    def properties(self) -> dict[str, str]:
        """The Delta table properties the table is created with.

        Deletion vectors are off, explicitly: Databricks (DBR 14+) turns them on for new tables, Spark's
        MERGEs and DELETEs then write them, and deltalake's pyarrow reads (the dashboard's, a user's
        `to_pyarrow_table`) refuse any table with the feature. They also made Spark's Gold MERGE slower
        here (docs/pipeline.md, "What a micro-batch costs").
        """
        return {
            "delta.checkpointInterval": str(self.checkpoint_interval),
            "delta.enableDeletionVectors": "false",
        }

    def arrow_schema(self, columns: tuple[str, ...] | None = None) -> pa.Schema:
        """The table's Arrow schema (timestamps in microseconds, UTC), or that of some of its columns."""
        import pyarrow as pa

        return pa.schema(
            [(name, arrow_type(self.column(name).kind)) for name in columns or self.column_names]
        )


def arrow_type(kind: Kind) -> pa.DataType:
    """The Arrow type of a catalogue kind: what Spark's `toArrow` and delta-rs produce for it."""
    import pyarrow as pa

    return {
        "string": pa.string(),
        "binary": pa.binary(),
        "int": pa.int32(),
        "long": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }[kind]


def _columns(*pairs: tuple[str, Kind]) -> tuple[Column, ...]:
    return tuple(Column(name, kind) for name, kind in pairs)


BRONZE_EVENTS_RAW = Table(
    "events_raw",
    "bronze",
    # The value is binary: Kafka delivers bytes, and poison input is not UTF-8, which a Delta string
    # column must be. Silver decodes it.
    _columns(
        ("key", "string"),
        ("value", "binary"),
        ("topic", "string"),
        ("partition", "int"),
        ("offset", "long"),
        ("kafka_timestamp", "timestamp"),
        ("ingested_at", "timestamp"),
        ("ingest_date", "date"),
    ),
    keys=("topic", "partition", "offset"),
    time_column="ingested_at",
    partition_by=("ingest_date",),
    checkpoint_interval=20,
)

SILVER_EVENTS = Table(
    "events",
    "silver",
    _columns(
        ("event_id", "string"),
        ("event_time", "timestamp"),
        ("event", "string"),
        ("user_id", "string"),
        ("video_id", "string"),
        ("payload", "string"),
        ("kafka_partition", "int"),
        ("kafka_offset", "long"),
        ("ingested_at", "timestamp"),
    ),
    keys=("event_id",),
    time_column="event_time",
    checkpoint_interval=21,
)

SILVER_QUARANTINE = Table(
    "quarantine",
    "silver",
    # A readable copy of the value (invalid UTF-8 replaced by U+FFFD) and, separately, the exact bytes.
    _columns(
        ("value", "string"),
        ("raw_value", "binary"),
        ("reason", "string"),
        ("kafka_partition", "int"),
        ("kafka_offset", "long"),
        ("ingested_at", "timestamp"),
    ),
    keys=("kafka_partition", "kafka_offset"),
    time_column="ingested_at",
    checkpoint_interval=22,
)

# Gold has no liquid clustering: delta-rs, which commits the live MERGEs, does not write clustered tables,
# and Gold is small enough for plain compaction (docs/pipeline.md).
GOLD_EVENTS_BY_TYPE = Table(
    "events_by_type",
    "gold",
    _columns(
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
        ("video_id", "string"),
        ("event", "string"),
        ("event_count", "long"),
    ),
    keys=("window_start", "video_id", "event"),
    time_column="window_start",
    end_column="window_end",
    checkpoint_interval=23,
)

GOLD_USER_SESSIONS = Table(
    "user_sessions",
    "gold",
    _columns(
        ("user_id", "string"),
        ("video_id", "string"),
        ("session_start", "timestamp"),
        ("session_end", "timestamp"),
        ("duration_seconds", "double"),
        ("event_count", "long"),
        ("message_count", "long"),
        # True when the session's last event is a `leave`: the viewer's next event starts a new session.
        ("ended_by_leave", "boolean"),
    ),
    keys=("user_id", "video_id", "session_start"),
    time_column="session_start",
    end_column="session_end",
    spans=True,
    checkpoint_interval=25,
)

GOLD_VIDEO_ACTIVITY = Table(
    "video_activity",
    "gold",
    _columns(
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
        ("video_id", "string"),
        ("active_viewers", "long"),
        ("concurrent_viewers", "long"),
        ("message_count", "long"),
        ("like_count", "long"),
        ("event_count", "long"),
    ),
    keys=("window_start", "video_id"),
    time_column="window_start",
    end_column="window_end",
    checkpoint_interval=27,
)

TABLES: tuple[Table, ...] = (
    BRONZE_EVENTS_RAW,
    SILVER_EVENTS,
    SILVER_QUARANTINE,
    GOLD_EVENTS_BY_TYPE,
    GOLD_USER_SESSIONS,
    GOLD_VIDEO_ACTIVITY,
)

GOLD: dict[str, Table] = {table.name: table for table in TABLES if table.layer == "gold"}
"""The Gold tables by name, in the order the dashboard lists them."""


def table(layer: str, name: str) -> Table:
    """One table by layer and name; KeyError naming the known tables when there is none."""
    for candidate in TABLES:
        if candidate.layer == layer and candidate.name == name:
            return candidate
    known = ", ".join(f"{t.layer}.{t.name}" for t in TABLES)
    raise KeyError(f"unknown table {layer}.{name} (known: {known})")
