"""Realistic Gold tables written from a seeded simulation, for tests, demos and benchmarks.

The numbers follow the shape of a live audience (a daily swell, chat bursts, heartbeats every 30 s),
not the exact Gold semantics: they exercise the dashboard, they are not a pipeline oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from pulse_core.catalogue import GOLD
from pulse_core.contract import EVENT_TYPES

GOLD_SCHEMAS = {name: table.arrow_schema() for name, table in GOLD.items()}

WINDOW = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GoldFixture:
    """What `write_gold_fixture` wrote.

    Attributes:
        lake_root: The lake the tables were written under (`<lake>/gold/<table>`).
        videos: The video ids, in order.
        first_window: Start of the oldest window.
        last_window: Start of the newest window (the one that contains `now`).
        rows: Row count per table.
    """

    lake_root: str
    videos: tuple[str, ...]
    first_window: datetime
    last_window: datetime
    rows: dict[str, int]


def floor_minute(moment: datetime) -> datetime:
    """The start of the 1-minute window that contains `moment` (UTC)."""
    moment = moment.astimezone(UTC)
    return moment.replace(second=0, microsecond=0)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(micros.astype("int64"), type=pa.int64()).cast(GOLD_SCHEMAS["video_activity"][0].type)


def simulate_gold(
    *, now: datetime, hours: float, videos: int, seed: int = 7
) -> tuple[dict[str, pa.Table], tuple[str, ...]]:
    """Simulate Gold rows for `videos` live streams over the `hours` that end at `now`.

    Args:
        now: The newest moment; the newest window is the one that contains it (still filling).
        hours: How much history to produce.
        videos: How many concurrent live streams.
        seed: Seed of the random generator; the same arguments give the same tables.

    Returns:
        The three Gold tables as Arrow tables, and the video ids.
    """
    rng = np.random.default_rng(seed)
    minutes = max(1, math.ceil(hours * 60))
    last = floor_minute(now)
    first = last - (minutes - 1) * WINDOW
    starts = _micros(first) + np.arange(minutes, dtype="int64") * 60_000_000
    video_ids = tuple(f"video_{index + 1:02d}" for index in range(videos))

    base = rng.lognormal(mean=4.0, sigma=0.8, size=(videos, 1))
    phase = rng.uniform(0, 1, size=(videos, 1))
    day = np.arange(minutes)[None, :] / 1440.0
    swell = 1.0 + 0.45 * np.sin(2 * np.pi * (day + phase))
    drift = np.exp(np.cumsum(rng.normal(0, 0.02, size=(videos, minutes)), axis=1))
    concurrent = np.maximum(0, np.round(base * swell * drift)).astype("int64")

    joins = rng.poisson(0.08 * concurrent + 0.2)
    leaves = rng.poisson(0.08 * concurrent)
    heartbeats = 2 * concurrent
    bursts = np.where(rng.random((videos, minutes)) < 0.01, 4.0, 1.0)
    messages = rng.poisson(0.25 * concurrent * bursts)
    likes = rng.poisson(0.1 * concurrent)
    shares = rng.poisson(0.01 * concurrent)
    active = concurrent + joins + rng.poisson(0.05 * concurrent)
    counts = {
        "join": joins,
        "leave": leaves,
        "heartbeat": heartbeats,
        "message": messages,
        "like": likes,
        "share": shares,
    }
    events = np.sum(list(counts.values()), axis=0)

    grid_video = np.repeat(np.array(video_ids, dtype=object), minutes)
    grid_start = np.tile(starts, videos)
    video_activity = pa.table(
        {
            "window_start": _timestamps(grid_start),
            "window_end": _timestamps(grid_start + 60_000_000),
            "video_id": pa.array(grid_video, type=pa.string()),
            "active_viewers": active.ravel(),
            "concurrent_viewers": concurrent.ravel(),
            "message_count": messages.ravel(),
            "like_count": likes.ravel(),
            "event_count": events.ravel(),
        },
        schema=GOLD_SCHEMAS["video_activity"],
    )

    by_type = [(name, counts[name].ravel()) for name in EVENT_TYPES]
    keep = [values > 0 for _, values in by_type]
    events_by_type = pa.table(
        {
            "window_start": _timestamps(np.concatenate([grid_start[m] for m in keep])),
            "window_end": _timestamps(np.concatenate([grid_start[m] + 60_000_000 for m in keep])),
            "video_id": pa.array(np.concatenate([grid_video[m] for m in keep]), type=pa.string()),
            "event": pa.array(
                np.concatenate(
                    [np.full(m.sum(), name, dtype=object) for (name, _), m in zip(by_type, keep, strict=True)]
                ),
                type=pa.string(),
            ),
            "event_count": np.concatenate([values[m] for (_, values), m in zip(by_type, keep, strict=False)]),
        },
        schema=GOLD_SCHEMAS["events_by_type"],
    )

    # One session per join, starting in the minute of the join and lasting a long-tailed while.
    session_video = np.repeat(grid_video, joins.ravel())
    offsets = rng.integers(0, 60_000_000, size=joins.sum())
    session_start = np.minimum(np.repeat(grid_start, joins.ravel()) + offsets, _micros(now))
    duration = np.minimum(rng.lognormal(mean=np.log(480), sigma=1.0, size=session_start.size), 4 * 3600)
    session_end = np.minimum(session_start + (duration * 1e6).astype("int64"), _micros(now))
    duration_seconds = (session_end - session_start) / 1e6
    order = np.argsort(session_start, kind="stable")
    user_sessions = pa.table(
        {
            "user_id": pa.array(
                np.char.add("user_", rng.integers(1, 50_000, size=session_start.size).astype(str))[order],
                type=pa.string(),
            ),
            "video_id": pa.array(session_video[order], type=pa.string()),
            "session_start": _timestamps(session_start[order]),
            "session_end": _timestamps(session_end[order]),
            "duration_seconds": duration_seconds[order],
            "event_count": (2 + duration_seconds // 30).astype("int64")[order],
            "message_count": rng.poisson(duration_seconds / 240)[order].astype("int64"),
            # A session that stopped before `now` ended with its viewer's `leave`.
            "ended_by_leave": (session_end < _micros(now))[order],
        },
        schema=GOLD_SCHEMAS["user_sessions"],
    )
    return {
        "events_by_type": events_by_type.sort_by("window_start"),
        "user_sessions": user_sessions,
        "video_activity": video_activity.sort_by("window_start"),
    }, video_ids


def write_gold_fixture(
    lake_root: str,
    *,
    now: datetime,
    hours: float = 2,
    videos: int = 5,
    seed: int = 7,
    tables: tuple[str, ...] = tuple(GOLD_SCHEMAS),
    empty: tuple[str, ...] = (),
    storage_options: dict[str, str] | None = None,
    commits_per_table: int | None = None,
) -> GoldFixture:
    """Write simulated Gold tables under `<lake_root>/gold/<table>`, one append per hour of data.

    Appending hour by hour leaves one set of files per hour, as the streaming job does, so the
    time-range statistics of each file let a reader skip the hours it does not need.

    Args:
        lake_root: A local path or an `az://`/`abfss://` lake root.
        now: The newest moment in the data.
        hours: History length.
        videos: Number of videos.
        seed: Random seed; the same arguments write the same rows.
        tables: Which tables to write; the others are left missing.
        empty: Tables to create with their schema and no rows.
        storage_options: deltalake storage options for a remote lake.
        commits_per_table: How many appends per table (default: one per started hour).

    Returns:
        A summary of what was written.
    """
    simulated, video_ids = simulate_gold(now=now, hours=hours, videos=videos, seed=seed)
    commits = commits_per_table or max(1, math.ceil(hours))
    root = lake_root.rstrip("/")
    rows: dict[str, int] = {}
    for name in tables:
        uri = f"{root}/gold/{name}"
        data = simulated[name].slice(0, 0) if name in empty else simulated[name]
        rows[name] = data.num_rows
        chunk = max(1, math.ceil(data.num_rows / commits))
        offsets = range(0, data.num_rows, chunk) if data.num_rows else [0]
        for offset in offsets:
            write_deltalake(uri, data.slice(offset, chunk), mode="append", storage_options=storage_options)
    minutes = max(1, math.ceil(hours * 60))
    last = floor_minute(now)
    return GoldFixture(
        lake_root=root,
        videos=video_ids,
        first_window=last - (minutes - 1) * WINDOW,
        last_window=last,
        rows=rows,
    )
