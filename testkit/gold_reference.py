"""An independent, plain-Python reference implementation of the Gold semantics.

It shares no code with the Spark transforms, nor their constants (`pulse_core.semantics`): it reads the
definitions in docs/pipeline.md ("What Gold means") literally, one event at a time. The e2e and fault
tests and the benchmarks' Gold check (`benchmarks/gold_check.py`) compare Gold with it row by row. The
wheel does not ship it.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pulse_core.catalogue import GOLD

WINDOW = timedelta(seconds=60)
PRESENCE = timedelta(seconds=120)
SESSION_GAP = timedelta(seconds=300)

Row = dict[str, Any]


def as_utc(moment: datetime) -> datetime:
    """A naive UTC datetime, whatever form the instant came in."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def minute_of(moment: datetime) -> datetime:
    """The start of the 1-minute window holding `moment`."""
    return moment.replace(second=0, microsecond=0)


def _normalised(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": e["event_id"],
            "t": as_utc(e["event_time"]),
            "event": e["event"],
            "user_id": e["user_id"],
            "video_id": e["video_id"],
        }
        for e in events
    ]


def reference_events_by_type(events: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Events per (minute, video, type)."""
    counts = Counter((minute_of(e["t"]), e["video_id"], e["event"]) for e in _normalised(events))
    return [
        {"window_start": w, "window_end": w + WINDOW, "video_id": v, "event": k, "event_count": n}
        for (w, v, k), n in sorted(counts.items())
    ]


def reference_video_activity(events: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Active viewers, viewers present at each minute's end, and activity counts, per (minute, video)."""
    rows = _normalised(events)
    by_window: dict[tuple[str, datetime], list[dict[str, Any]]] = defaultdict(list)
    # Per (video, user): events sorted by (time, is_leave) — at the same instant a leave is the later one.
    timeline: dict[tuple[str, str], list[tuple[datetime, bool]]] = defaultdict(list)
    for e in rows:
        by_window[(e["video_id"], minute_of(e["t"]))].append(e)
        timeline[(e["video_id"], e["user_id"])].append((e["t"], e["event"] == "leave"))
    for entries in timeline.values():
        entries.sort()
    out = []
    for (video, start), members in sorted(by_window.items(), key=lambda item: (item[0][1], item[0][0])):
        end = start + WINDOW
        # Only viewers with an event in [end - 120 s, end) can be present at `end`.
        candidates = {e["user_id"] for e in members} | {
            e["user_id"] for e in by_window.get((video, start - WINDOW), [])
        }
        present = 0
        for user in candidates:
            entries = timeline[(video, user)]
            index = bisect.bisect_left(entries, (end, False)) - 1
            if index >= 0:
                latest_time, latest_is_leave = entries[index]
                present += int(not latest_is_leave and latest_time >= end - PRESENCE)
        out.append(
            {
                "window_start": start,
                "window_end": end,
                "video_id": video,
                "active_viewers": len({e["user_id"] for e in members}),
                "concurrent_viewers": present,
                "message_count": sum(e["event"] == "message" for e in members),
                "like_count": sum(e["event"] == "like" for e in members),
                "event_count": len(members),
            }
        )
    return out


def reference_user_sessions(events: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Sessions per (user, video): a new one after more than 300 s of silence or after a leave."""
    per_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in _normalised(events):
        per_pair[(e["user_id"], e["video_id"])].append(e)
    sessions: list[Row] = []
    for (user, video), items in sorted(per_pair.items()):
        items.sort(key=lambda e: (e["t"], e["event"] == "leave", e["event_id"]))
        current: list[dict[str, Any]] = []
        for e in items:
            if current and (e["t"] - current[-1]["t"] > SESSION_GAP or current[-1]["event"] == "leave"):
                sessions.append(_session(user, video, current))
                current = []
            current.append(e)
        if current:
            sessions.append(_session(user, video, current))
    return sessions


def _session(user: str, video: str, items: list[dict[str, Any]]) -> Row:
    start, end = items[0]["t"], items[-1]["t"]
    return {
        "user_id": user,
        "video_id": video,
        "session_start": start,
        "session_end": end,
        "duration_seconds": (end - start).total_seconds(),
        "event_count": len(items),
        "message_count": sum(e["event"] == "message" for e in items),
        "ended_by_leave": items[-1]["event"] == "leave",
    }


def reference_gold(events: Iterable[Mapping[str, Any]]) -> dict[str, list[Row]]:
    """All three Gold tables from Silver rows (each with event_id, event_time, event, user_id, video_id)."""
    rows = list(events)
    return {
        "events_by_type": reference_events_by_type(rows),
        "user_sessions": reference_user_sessions(rows),
        "video_activity": reference_video_activity(rows),
    }


# The catalogue names each table's keys; the computations above share nothing with the transforms.
GOLD_KEYS = {name: table.keys for name, table in GOLD.items()}


def normalise_rows(rows: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Rows with naive-UTC datetimes and plain ints/floats, for comparison."""
    out = []
    for row in rows:
        out.append({k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()})
    return out


def differences(
    table: str, actual: Iterable[Mapping[str, Any]], expected: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Human-readable differences between a Gold table and the reference, by key (empty when equal)."""
    key = GOLD_KEYS[table]
    got = {tuple(r[k] for k in key): r for r in normalise_rows(actual)}
    want = {tuple(r[k] for k in key): r for r in normalise_rows(expected)}
    problems = [f"missing {k}" for k in sorted(want.keys() - got.keys())]
    problems += [f"unexpected {k}" for k in sorted(got.keys() - want.keys())]
    for k in sorted(want.keys() & got.keys()):
        a, b = got[k], want[k]
        for column, value in b.items():
            other = a.get(column)
            same = (
                abs(other - value) < 1e-6
                if isinstance(value, float) and other is not None
                else other == value
            )
            if not same:
                problems.append(f"{k} {column}: gold={other!r} reference={value!r}")
    return problems
