"""The one data module of the pages: every Gold read goes through here, cached with `st.cache_data`.

Cached values are plain frames and small dataclasses, keyed by the lake root, the table, the time
range and the videos. The storage options (which may hold a SAS) are passed as underscore arguments,
so they are never part of a cache key and never hashed or stored.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from pulse_core.catalogue import GOLD
from pulse_core.progress import Progress
from pulse_core.settings import PulseSettings, SettingsError, load_settings
from pulse_dashboard.credentials import (
    CredentialError,
    SasSource,
    parse_lake,
    sas_source,
    storage_options,
)
from pulse_dashboard.gold import (
    GoldProblem,
    GoldTable,
    gold_progress,
    list_videos,
    newest_value,
    open_table,
    read_gold,
)
from pulse_dashboard.settings import DashboardSettings, load_dashboard_settings

# The Azure SDK logs request URLs; keep its chatter (and anything that could carry a SAS) out of logs.
for _name in ("azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def _cache_ttl() -> float:
    try:
        return load_dashboard_settings().dashboard_cache_ttl_seconds
    except ValueError:
        return DashboardSettings.model_fields["dashboard_cache_ttl_seconds"].default


CACHE_TTL_SECONDS = _cache_ttl()


@dataclass(frozen=True)
class Problem:
    """Why a table cannot be shown (a picklable copy of `GoldProblem`)."""

    table: str
    kind: str
    message: str

    @classmethod
    def of(cls, problem: GoldProblem) -> Problem:
        """Copy a `GoldProblem`."""
        return cls(problem.table, problem.kind, problem.message)


@dataclass(frozen=True)
class TableStatus:
    """How fresh one Gold table is: its newest `window_end`/`session_end`, or the problem."""

    table: str
    newest: pd.Timestamp | None
    problem: Problem | None
    # The pipeline's progress record (newest event time reflected, commit time), where the table has one.
    progress: Progress | None = None


@dataclass(frozen=True)
class Loaded:
    """A frame read from Gold, or the problem that prevented it."""

    frame: pd.DataFrame | None
    problem: Problem | None


@dataclass(frozen=True)
class Gold:
    """The resolved Gold tables of this run. `key` identifies the lake in cache keys (no secrets)."""

    key: str
    tables: dict[str, GoldTable]


def load_all_settings() -> tuple[PulseSettings, DashboardSettings]:
    """The shared and the dashboard settings from the environment.

    Raises:
        SettingsError: Invalid settings; the message says which variable to fix.
    """
    try:
        return load_settings(), load_dashboard_settings()
    except ValueError as exc:
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"Invalid dashboard settings: {exc}") from None


def settings_fingerprint(dash: DashboardSettings) -> str:
    """A short digest of the dashboard settings (secret included), safe to use in cache keys."""
    payload = dash.model_dump_json() + (dash.gold_sas_token.get_secret_value() if dash.gold_sas_token else "")
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@st.cache_resource(show_spinner=False)
def _sas_source(lake_root: str, fingerprint: str, _settings: DashboardSettings) -> SasSource | None:
    # One source per lake and settings: a delegated SAS is minted once per process and refreshed.
    return sas_source(parse_lake(lake_root), _settings)


def resolve_gold(settings: PulseSettings, dash: DashboardSettings) -> Gold:
    """Locate the Gold tables and attach a current credential.

    Raises:
        CredentialError: A remote lake without a usable credential.
    """
    root = settings.layer_root("gold")
    location = parse_lake(root)
    fingerprint = settings_fingerprint(dash)
    source = _sas_source(root, fingerprint, dash)
    options = storage_options(location, dash, source)
    expires = source.token().expires_on if source is not None else None
    tables = {name: GoldTable(name, settings.table_path("gold", name), options, expires) for name in GOLD}
    return Gold(key=f"{root}#{fingerprint}", tables=tables)


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def load_status(key: str, _gold: Gold) -> dict[str, TableStatus]:
    """The freshness of every Gold table, from the Delta logs only."""
    statuses: dict[str, TableStatus] = {}
    for name, table in _gold.tables.items():
        try:
            delta = open_table(table)
            statuses[name] = TableStatus(name, newest_value(table, delta), None, gold_progress(table, delta))
        except GoldProblem as problem:
            statuses[name] = TableStatus(name, None, Problem.of(problem))
    return statuses


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def load_videos(key: str, since: datetime | None, _gold: Gold) -> list[str]:
    """The video ids with windows since `since` (empty when the table cannot be read)."""
    try:
        return list_videos(_gold.tables["video_activity"], start=since)
    except GoldProblem:
        return []


@st.cache_data(ttl=CACHE_TTL_SECONDS, show_spinner=False)
def load_table(
    key: str,
    table: str,
    start: datetime,
    end: datetime,
    videos: tuple[str, ...] | None,
    _gold: Gold,
    columns: Sequence[str] | None = None,
) -> Loaded:
    """Rows of one Gold table in `[start, end)` for `videos`, read with the filters pushed down."""
    try:
        frame = read_gold(
            _gold.tables[table],
            start=start,
            end=end,
            videos=videos,
            columns=list(columns) if columns else None,
        )
    except GoldProblem as problem:
        return Loaded(None, Problem.of(problem))
    return Loaded(frame, None)


def clear_cache() -> None:
    """Forget every cached read (the next run reads Gold again)."""
    load_status.clear()
    load_videos.clear()
    load_table.clear()


__all__ = [
    "CACHE_TTL_SECONDS",
    "CredentialError",
    "Gold",
    "Loaded",
    "Problem",
    "TableStatus",
    "clear_cache",
    "load_all_settings",
    "load_status",
    "load_table",
    "load_videos",
    "resolve_gold",
]
