"""The contract is one definition: its JSON Schema, Spark schema and Python type agree."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from pulse.tables import raw_event_schema
from pulse_core.contract import EVENT_TYPES, REASON_CODES, Event, json_schema

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "samples" / "seed_events.jsonl"


def test_exported_schema_is_current() -> None:
    exported = json.loads((REPO / "docs" / "event.schema.json").read_text())
    assert exported == json.loads(json.dumps(json_schema(), sort_keys=True)), (
        "docs/event.schema.json is stale: run `python -m pulse_core.contract docs/event.schema.json`"
    )


def test_schema_documents_every_field_and_requires_the_right_ones() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == {"event_id", "timestamp", "event", "user_id", "video_id", "payload"}
    assert set(schema["required"]) == {"timestamp", "event", "user_id", "video_id"}
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert schema["properties"]["event"]["enum"] == list(EVENT_TYPES)


def test_spark_schema_has_the_same_fields_as_strings() -> None:
    fields = raw_event_schema().fields
    assert [f.name for f in fields] == list(Event.model_fields)
    assert {f.dataType.simpleString() for f in fields} == {"string"}


def test_wire_form_normalises_to_utc_and_omits_absent_fields() -> None:
    plus_two = timezone(timedelta(hours=2))
    event = Event(timestamp=datetime(2025, 7, 13, 14, 30, 20, 123456, tzinfo=plus_two), event="like",
                  user_id="user_1", video_id="video_1")  # fmt: skip
    body = json.loads(event.to_json())
    assert body == {"timestamp": "2025-07-13T12:30:20.123Z", "event": "like", "user_id": "user_1",
                    "video_id": "video_1"}  # fmt: skip


def test_python_type_enforces_the_limits() -> None:
    with pytest.raises(ValidationError):
        Event(timestamp=datetime.now(UTC), event="dance", user_id="u", video_id="v")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Event(timestamp=datetime.now(UTC), event="join", user_id="u" * 129, video_id="v")


def test_seed_sample_is_in_the_seed_format() -> None:
    lines = SAMPLE.read_text().splitlines()
    assert len(lines) >= 40
    for line in lines:
        body = json.loads(line)
        assert "event_id" not in body
        Event.model_validate(body)


def test_reason_codes_are_the_designed_ones_in_order() -> None:
    assert REASON_CODES == (
        "malformed_json", "missing_field:timestamp", "missing_field:event", "missing_field:user_id",
        "missing_field:video_id", "bad_timestamp", "unknown_event", "bad_id", "empty_message",
        "payload_too_large", "future_timestamp",
    )  # fmt: skip
