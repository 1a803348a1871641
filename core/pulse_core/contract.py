"""Event contract v1: the one definition of a viewer interaction.

The producer, the Silver parser, the tests and the docs all derive from `Event`:

- `Event` itself is the Python type;
- `json_schema()` is the JSON Schema (exported to `docs/event.schema.json`);
- `pulse.tables.raw_event_schema()` is the Spark `StructType` Silver parses with (every field as a
  string, so that a bad value is quarantined with its reason instead of silently becoming null);
- the constants below are the limits that the reason codes enforce.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 1
EVENT_TYPES: tuple[str, ...] = ("join", "leave", "heartbeat", "message", "like", "share")
EventType = Literal["join", "leave", "heartbeat", "message", "like", "share"]
REQUIRED_FIELDS: tuple[str, ...] = ("timestamp", "event", "user_id", "video_id")
MAX_ID_LENGTH = 128
MAX_PAYLOAD_LENGTH = 2000
FUTURE_TOLERANCE = timedelta(minutes=5)

# Silver's reason codes, in the order they are checked: the first match wins.
REASON_CODES: tuple[str, ...] = (
    "malformed_json",
    *(f"missing_field:{name}" for name in REQUIRED_FIELDS),
    "bad_timestamp",
    "unknown_event",
    "bad_id",
    "empty_message",
    "payload_too_large",
    "future_timestamp",
)


class Event(BaseModel):
    """One viewer interaction with a live stream, as sent to Kafka (keyed by `video_id`)."""

    model_config = ConfigDict(
        title="Pulse event v1",
        json_schema_extra={"$id": "https://pulse.dev/schemas/event-v1.json", "additionalProperties": True},
    )

    event_id: str | None = Field(
        default=None,
        description=(
            "Unique id of the event. Optional: when absent, Silver derives it deterministically from "
            "(timestamp, event, user_id, video_id, payload), so resends of the same event dedupe."
        ),
        examples=["6f1c2b7e-2f4d-4d8e-9a59-0f8c1f2d3e4a"],
    )
    timestamp: datetime = Field(
        description=(
            "Event time, ISO-8601. `Z` or an offset is accepted and normalised to UTC; no offset means UTC. "
            f"More than {int(FUTURE_TOLERANCE.total_seconds() // 60)} minutes after ingest time is rejected."
        ),
        examples=["2025-07-13T12:30:20.123Z"],
    )
    event: EventType = Field(description="What the viewer did.", examples=["message"])
    user_id: str = Field(
        min_length=1, max_length=MAX_ID_LENGTH, description="The viewer.", examples=["user_33"]
    )
    video_id: str = Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="The live stream. It is also the Kafka key, so a video's events stay in order.",
        examples=["video_42"],
    )
    payload: str | None = Field(
        default=None,
        max_length=MAX_PAYLOAD_LENGTH,
        description="Chat text: required and non-blank for `message` events, optional for the others.",
        examples=["awesome stream!"],
    )

    def to_json(self) -> str:
        """The wire form: compact JSON, UTC timestamp with milliseconds and `Z`, absent fields omitted."""
        body = {name: getattr(self, name) for name in _WIRE_ORDER}
        body["timestamp"] = format_timestamp(self.timestamp)
        return _ENCODER.encode({key: value for key, value in body.items() if value is not None})


_WIRE_ORDER = ("event_id", "timestamp", "event", "user_id", "video_id", "payload")
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and `Z`, as the producer writes it."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def json_schema() -> dict:
    """The JSON Schema of the contract, generated from `Event`."""
    return Event.model_json_schema()


def export_json_schema(path: Path) -> None:
    """Write the JSON Schema to `path` (the repo keeps it at docs/event.schema.json)."""
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":  # pragma: no cover - `python -m pulse_core.contract docs/event.schema.json`
    import sys

    export_json_schema(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/event.schema.json"))
