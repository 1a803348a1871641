"""Every table of the lake reads and filters with the common Delta readers after many small micro-batches,
whichever writer committed it: deltalake with pyarrow filters, polars (`read_delta`, and `scan_delta`
with the filter pushed down) and DuckDB's `delta_scan`. Each reader's filtered rows are compared with the
same filter applied to the whole table in Python."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable

from pulse.jobs.runner import PipelineOptions, run_pipeline
from pulse_core import catalogue
from pulse_core.settings import load_settings
from tests.e2e.conftest import Broker
from tests.e2e.lake_checks import rows
from tests.e2e.late_stream import produce_hard_stream

pytestmark = pytest.mark.e2e

# A string column of each table and a value some rows hold: string filters are what failed on Gold.
FILTERS = {
    "events_raw": ("key", "video_1"),
    "events": ("video_id", "video_1"),
    "quarantine": ("reason", "malformed_json"),
    "events_by_type": ("video_id", "video_1"),
    "user_sessions": ("video_id", "video_1"),
    "video_activity": ("video_id", "video_1"),
}
Key = tuple[Any, ...]
Reader = Callable[[str, catalogue.Table, str, str], list[Key]]


def _plain(value: Any) -> Any:
    """Readers return instants in their own forms: compare them as microseconds since the epoch."""
    return round(value.timestamp() * 1_000_000) if isinstance(value, datetime) else value


def _keys(records: list[dict[str, Any]], table: catalogue.Table) -> list[Key]:
    return sorted(tuple(_plain(record[key]) for key in table.keys) for record in records)


def _deltalake(path: str, table: catalogue.Table, column: str, value: str) -> list[Key]:
    read = DeltaTable(path).to_pyarrow_table(columns=list(table.keys), filters=[(column, "=", value)])
    return _keys(read.to_pylist(), table)


def _polars_read(path: str, table: catalogue.Table, column: str, value: str) -> list[Key]:
    return _keys(pl.read_delta(path).filter(pl.col(column) == value).to_dicts(), table)


def _polars_scan(path: str, table: catalogue.Table, column: str, value: str) -> list[Key]:
    scan = pl.scan_delta(path).filter(pl.col(column) == value).select(list(table.keys))
    return _keys(scan.collect().to_dicts(), table)


def _duckdb(path: str, table: catalogue.Table, column: str, value: str) -> list[Key]:
    import duckdb_extension_delta

    extension = next(Path(duckdb_extension_delta.__file__).parent.rglob("delta.duckdb_extension"))
    with duckdb.connect() as connection:
        connection.execute(f"LOAD '{extension}'")
        # Instants as microseconds: DuckDB's own zoned timestamps need pytz to reach Python.
        columns = ", ".join(
            f'epoch_us("{key}")' if table.column(key).kind == "timestamp" else f'"{key}"'
            for key in table.keys
        )
        found = connection.execute(
            f'SELECT {columns} FROM delta_scan(?) WHERE "{column}" = ?',  # noqa: S608 - catalogue names
            [path, value],
        ).fetchall()
    return sorted(tuple(row) for row in found)


READERS: dict[str, Reader] = {
    "deltalake+pyarrow filter": _deltalake,
    "polars read_delta": _polars_read,
    "polars scan_delta": _polars_scan,
    "duckdb delta_scan": _duckdb,
}


@pytest.mark.parametrize("writer", ["delta-rs", "spark"])
def test_every_table_reads_and_filters_with_the_common_readers(
    spark, broker: Broker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, writer: str
) -> None:
    monkeypatch.setenv("PULSE_GOLD_WRITER", writer)
    settings = load_settings()
    lake = broker.home / "lake"
    produce_hard_stream(settings, tmp_path, events=2400, seed=22)
    run_pipeline(PipelineOptions("all", once=True, max_offsets_per_trigger=200), settings)
    commits = DeltaTable(str(lake / "gold" / "video_activity")).history()
    assert len(commits) >= 10, "many small micro-batches"

    failures = []
    for table in catalogue.TABLES:
        path = settings.table_path(table.layer, table.name)
        column, value = FILTERS[table.name]
        everything = rows(lake, table.layer, table.name)
        expected = _keys([r for r in everything if r[column] == value], table)
        assert 0 < len(expected) < len(everything), f"{table.layer}.{table.name}: the filter should select"
        for name, read in READERS.items():
            try:
                found = read(path, table, column, value)
            except Exception as exc:
                failures.append(f"{table.layer}.{table.name} with {name}: {type(exc).__name__}: {exc}")
                continue
            if found != expected:
                failures.append(
                    f"{table.layer}.{table.name} with {name}: {len(found)} rows, not {len(expected)}"
                )
    assert failures == []
