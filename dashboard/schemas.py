"""The Arrow schemas of the three Gold tables the dashboard reads (the Gold job writes the same columns)."""

from __future__ import annotations

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

EVENT_TYPES: tuple[str, ...] = ("join", "leave", "heartbeat", "message", "like", "share")

GOLD_SCHEMAS: dict[str, pa.Schema] = {
    "events_by_type": pa.schema(
        [
            ("window_start", UTC_TIMESTAMP),
            ("window_end", UTC_TIMESTAMP),
            ("video_id", pa.string()),
            ("event", pa.string()),
            ("event_count", pa.int64()),
        ]
    ),
    "user_sessions": pa.schema(
        [
            ("user_id", pa.string()),
            ("video_id", pa.string()),
            ("session_start", UTC_TIMESTAMP),
            ("session_end", UTC_TIMESTAMP),
            ("duration_seconds", pa.float64()),
            ("event_count", pa.int64()),
            ("message_count", pa.int64()),
        ]
    ),
    "video_activity": pa.schema(
        [
            ("window_start", UTC_TIMESTAMP),
            ("window_end", UTC_TIMESTAMP),
            ("video_id", pa.string()),
            ("active_viewers", pa.int64()),
            ("concurrent_viewers", pa.int64()),
            ("message_count", pa.int64()),
            ("like_count", pa.int64()),
            ("event_count", pa.int64()),
        ]
    ),
}

GOLD_TABLES: tuple[str, ...] = tuple(GOLD_SCHEMAS)
