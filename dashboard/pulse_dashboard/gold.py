"""Gold readers: open a Gold Delta table with deltalake and read only the rows a view needs.

The time range and the video selection are pushed down to the read: each Delta file's min/max
statistics are attached to its Arrow fragment, so files outside the range are never opened and the
rows inside are filtered exactly. Nothing here depends on how the table is partitioned.

No Streamlit here: `pulse_dashboard.data` caches these reads for the pages, benchmarks call them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from pulse_core.catalogue import GOLD, arrow_type
from pulse_core.progress import Progress, progress_from_history
from pulse_dashboard.credentials import redact

ProblemKind = Literal["missing", "empty", "expired", "denied", "unreachable", "error"]

UTC_TIMESTAMP = arrow_type("timestamp")


class GoldProblem(Exception):  # noqa: N818 - it is a state shown to people, not only an error
    """A Gold table cannot be shown. `message` is a sentence for the page; it holds no secret.

    Attributes:
        table: The Gold table, e.g. `video_activity`.
        kind: `missing`, `empty`, `expired`, `denied`, `unreachable` or `error`.
        message: What happened and what to do, in words.
    """

    def __init__(self, table: str, kind: ProblemKind, message: str) -> None:
        super().__init__(message)
        self.table = table
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class GoldTable:
    """Where one Gold table is and how to open it.

    Attributes:
        name: Table name, e.g. `video_activity`.
        uri: `<lake>/gold/<name>`.
        storage_options: deltalake storage options (may hold a SAS: never print them).
        sas_expires_on: Expiry of the SAS in `storage_options`, to tell an expired token apart.
    """

    name: str
    uri: str
    storage_options: dict[str, str]
    sas_expires_on: datetime | None = None

    def __repr__(self) -> str:
        return f"GoldTable({self.name!r}, {self.uri!r})"


def explain(table: GoldTable, exc: BaseException, now: datetime | None = None) -> GoldProblem:
    """Turn a deltalake/object-store failure into a `GoldProblem` with a plain-words message."""
    now = now or datetime.now(UTC)
    text = redact(str(exc), table.storage_options.get("azure_storage_sas_token", ""))
    lowered = text.lower()
    where = f"gold/{table.name}"
    if isinstance(exc, TableNotFoundError) or "no files in log segment" in lowered:
        return GoldProblem(
            table.name,
            "missing",
            f"Table {where} does not exist yet at {redact(table.uri)}: start the Gold job "
            "(`pulse pipeline gold`) or check PULSE_LAKE.",
        )
    denied = any(
        marker in lowered
        for marker in (
            "403",
            "lacked the necessary privileges",
            "authorizationfailure",
            "authenticationfailed",
        )
    )
    if denied and table.sas_expires_on is not None and table.sas_expires_on <= now:
        return GoldProblem(
            table.name,
            "expired",
            f"The storage token (SAS) for the gold container expired at "
            f"{table.sas_expires_on:%Y-%m-%d %H:%M} UTC, so {where} cannot be read. Supply a new "
            "PULSE_GOLD_SAS_TOKEN, or unset it to let the managed identity mint one.",
        )
    if denied:
        return GoldProblem(
            table.name,
            "denied",
            f"Storage refused to read {where} (403): the SAS has expired or does not grant read and "
            "list on the gold container. Check PULSE_GOLD_SAS_TOKEN or the dashboard identity's roles.",
        )
    unreachable = any(
        marker in lowered
        for marker in ("connection refused", "error sending request", "dns error", "timed out", "tcp connect")
    )
    if unreachable:
        return GoldProblem(
            table.name,
            "unreachable",
            f"The storage account cannot be reached, so {where} cannot be read. Check the network "
            "and PULSE_LAKE / PULSE_STORAGE_ENDPOINT; the dashboard keeps retrying.",
        )
    first_line = text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__
    return GoldProblem(table.name, "error", f"Reading {where} failed: {first_line}")


def open_table(table: GoldTable) -> DeltaTable:
    """Open the table's latest version.

    Raises:
        GoldProblem: Missing table, refused or unreachable storage.
    """
    try:
        return DeltaTable(table.uri, storage_options=table.storage_options or None)
    except Exception as exc:
        raise explain(table, exc) from None


def gold_progress(table: GoldTable, delta: DeltaTable | None = None) -> Progress | None:
    """How far the pipeline has got, from the progress record of the table's recent commits (log only)."""
    delta = delta or open_table(table)
    try:
        return progress_from_history(delta.history(20))
    except Exception as exc:
        raise explain(table, exc) from None


def newest_value(table: GoldTable, delta: DeltaTable | None = None) -> pd.Timestamp:
    """The newest `window_end` (or `session_end`) in the table, from the Delta log's file statistics.

    Only the log is read; the data files are opened only when a file carries no statistics.

    Raises:
        GoldProblem: `empty` when the table has no rows; or the table cannot be opened.
    """
    delta = delta or open_table(table)
    column = GOLD[table.name].freshness_column
    try:
        actions = pa.table(delta.get_add_actions(flatten=True))
        rows = pc.sum(actions["num_records"]).as_py() if actions.num_rows else 0
        stat = f"max.{column}"
        if actions.num_rows and stat in actions.column_names and actions[stat].null_count == 0:
            newest = pc.max(actions[stat]).as_py()
        elif actions.num_rows:
            newest = pc.max(_scan(delta, table.name, [column], None, None)[column]).as_py()
        else:
            newest = None
    except Exception as exc:
        raise explain(table, exc) from None
    if not rows or newest is None:
        raise GoldProblem(
            table.name,
            "empty",
            f"Table gold/{table.name} exists but has no rows yet: the Gold job has not written any "
            "window. It fills within a minute of events arriving.",
        )
    return pd.Timestamp(newest).tz_convert(UTC)


def time_filter(name: str, start: datetime | None, end: datetime | None) -> pc.Expression | None:
    """The pushed-down predicate for `[start, end)`.

    Windows are kept when they start in the range; sessions when they overlap it. Videos are not pushed
    down: Gold files that delta-rs's own MERGE wrote (Pulse before it replaced the MERGE, docs/pipeline.md)
    hold strings as Arrow string views, and a pyarrow scan cannot compare those with a string filter.
    `read_gold` filters them after the scan, which works on every file.
    """
    lower_column, upper_column = GOLD[name].time_bounds
    parts: list[pc.Expression] = []
    if start is not None:
        parts.append(pc.field(lower_column) >= pa.scalar(start, type=UTC_TIMESTAMP))
    if end is not None:
        parts.append(pc.field(upper_column) < pa.scalar(end, type=UTC_TIMESTAMP))
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part
    return combined


def has_deletion_vectors(delta: DeltaTable) -> bool:
    """True when the table has Delta's deletion vectors feature, which deltalake's pyarrow dataset refuses.

    Pulse creates its tables without it, but Databricks (DBR 14+) turned it on for the Gold tables an
    earlier Pulse created there, and Spark's MERGEs then write deletion vectors.
    """
    return "deletionVectors" in (delta.protocol().reader_features or [])


def _scan(
    delta: DeltaTable, name: str, columns: list[str], start: datetime | None, end: datetime | None
) -> pa.Table:
    """`[start, end)` of a table, read by deltalake's own engine, which applies deletion vectors, with the
    same time bounds as `time_filter`; the columns typed as the catalogue says."""
    lower_column, upper_column = GOLD[name].time_bounds
    bounds = []
    if start is not None:
        bounds.append(f"{lower_column} >= '{start.astimezone(UTC).isoformat()}'")
    if end is not None:
        bounds.append(f"{upper_column} < '{end.astimezone(UTC).isoformat()}'")
    read = pa.RecordBatchReader.from_stream(delta.scan(columns, " AND ".join(bounds) or None)).read_all()
    return read.select(columns).cast(GOLD[name].arrow_schema(tuple(columns)))


def read_gold(
    table: GoldTable,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    videos: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read the rows of a Gold table in `[start, end)` for `videos` (all when `None`).

    Args:
        table: The table to read.
        start: Inclusive lower time bound (UTC), or none.
        end: Exclusive upper time bound (UTC), or none.
        videos: Video ids to keep; `None` keeps every video, an empty list keeps none.
        columns: Columns to read (all when `None`).

    Returns:
        A DataFrame with the table's columns; timestamps are timezone-aware UTC.

    Raises:
        GoldProblem: The table is missing or storage refused or failed the read.
    """
    delta = open_table(table)
    wanted = list(columns) if columns is not None else list(GOLD[table.name].column_names)
    scanned = wanted if videos is None or "video_id" in wanted else [*wanted, "video_id"]
    try:
        if has_deletion_vectors(delta):
            arrow = _scan(delta, table.name, scanned, start, end)
        else:
            dataset = delta.to_pyarrow_dataset()
            arrow = dataset.to_table(columns=scanned, filter=time_filter(table.name, start, end))
    except Exception as exc:
        raise explain(table, exc) from None
    if videos is not None:
        chosen = pa.array(list(videos), type=pa.string())
        arrow = arrow.filter(pc.is_in(arrow["video_id"].cast(pa.string()), value_set=chosen))
    return arrow.select(wanted).to_pandas()


def list_videos(table: GoldTable, *, start: datetime | None = None) -> list[str]:
    """The distinct video ids with windows since `start`, sorted."""
    frame = read_gold(table, start=start, columns=["video_id"])
    return sorted(frame["video_id"].dropna().unique().tolist())
