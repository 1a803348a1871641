"""Silver's transforms on small in-memory frames: reason codes, normalisation, event ids, dedupe."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from pulse.producer.faults import BAD_EVENT_BUILDERS
from pulse.tables import BRONZE_EVENTS_RAW
from pulse.transforms.silver import first_per_event_id, split_checked_rows, validate
from pulse_core import catalogue
from pulse_core.contract import REASON_CODES, Event

INGESTED = datetime(2025, 7, 13, 12, 31, 0, tzinfo=UTC)
GOOD = {"timestamp": "2025-07-13T12:30:20.123Z", "event": "message", "user_id": "user_33",
        "video_id": "video_42", "payload": "awesome stream!"}  # fmt: skip


def _bronze(spark, values: list[str | bytes | None], ingested: datetime = INGESTED):
    rows = []
    for offset, value in enumerate(values):
        raw = value.encode() if isinstance(value, str) else value
        rows.append((raw, offset))
    frame = spark.createDataFrame(rows, "value binary, offset long")
    return frame.select(
        F.lit("video_42").alias("key"),
        F.col("value").cast("string").alias("value"),
        F.lit("user-interactions").alias("topic"),
        F.lit(0).alias("partition"),
        F.col("offset"),
        F.lit(ingested).alias("kafka_timestamp"),
        F.lit(ingested).alias("ingested_at"),
        F.lit(ingested.date()).alias("ingest_date"),
    ).select([f.name for f in BRONZE_EVENTS_RAW.fields])


def _with(**changes: object) -> str:
    body = {**GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...})


CRAFTED: list[tuple[str | bytes | None, str]] = [
    ('{"timestamp": "2025-07-13T12:30:20Z", "event": "join"', "malformed_json"),
    ("[1, 2, 3]", "malformed_json"),
    ('"just a string"', "malformed_json"),
    (b"\xff\xfe" + _with().encode(), "malformed_json"),
    ("", "malformed_json"),
    (None, "malformed_json"),
    (_with(timestamp=...), "missing_field:timestamp"),
    (_with(timestamp=None), "missing_field:timestamp"),
    (_with(event=...), "missing_field:event"),
    (_with(user_id=None), "missing_field:user_id"),
    (_with(video_id=...), "missing_field:video_id"),
    (_with(timestamp=..., event=...), "missing_field:timestamp"),
    (_with(timestamp="2025-13-45T99:00:00Z"), "bad_timestamp"),
    (_with(timestamp="yesterday"), "bad_timestamp"),
    (_with(timestamp="1752409820"), "bad_timestamp"),
    (_with(event="dance"), "unknown_event"),
    (_with(event="JOIN"), "unknown_event"),
    (_with(user_id=""), "bad_id"),
    (_with(video_id="v" * 129), "bad_id"),
    (_with(payload=...), "empty_message"),
    (_with(payload="   "), "empty_message"),
    (_with(payload="x" * 2001), "payload_too_large"),
    (_with(event="like", payload="y" * 2001), "payload_too_large"),
    (_with(timestamp="2025-07-13T12:36:01Z"), "future_timestamp"),
    (_with(event="dance", user_id=""), "unknown_event"),  # first match wins
]


def test_every_reason_code_on_crafted_rows(spark) -> None:
    valid, rejected = validate(_bronze(spark, [value for value, _ in CRAFTED]))
    assert valid.count() == 0
    got = {row.kafka_offset: row.reason for row in rejected.collect()}
    assert got == {offset: reason for offset, (_, reason) in enumerate(CRAFTED)}
    assert {reason for _, reason in CRAFTED} == set(REASON_CODES)


def test_producer_bad_events_get_the_reason_they_were_built_for(spark) -> None:
    rng = random.Random(11)
    base = Event(timestamp=INGESTED - timedelta(minutes=1), event="join", user_id="u1", video_id="v1")
    values, expected = [], []
    for code, build in BAD_EVENT_BUILDERS.items():
        for _ in range(8):
            values.append(build(base, rng, INGESTED))
            expected.append(code)
    _, rejected = validate(_bronze(spark, values))
    got = {row.kafka_offset: row.reason for row in rejected.collect()}
    assert got == dict(enumerate(expected))


def test_valid_rows_are_normalised_to_utc(spark) -> None:
    values = [
        _with(),
        _with(timestamp="2025-07-13T14:30:20.5+02:00", event="like", payload=...),
        _with(timestamp="2025-07-13T12:30:20", event="heartbeat", payload=...),
        _with(timestamp="2025-07-13T12:35:59Z", event="join", payload=...),  # within the 5-minute tolerance
        _with(payload="z" * 2000),
    ]
    valid, rejected = validate(_bronze(spark, values))
    assert rejected.count() == 0
    rows = {r.kafka_offset: r for r in valid.collect()}
    assert rows[0].event_time == datetime(2025, 7, 13, 12, 30, 20, 123000)
    assert rows[1].event_time == datetime(2025, 7, 13, 12, 30, 20, 500000)
    assert rows[2].event_time == datetime(2025, 7, 13, 12, 30, 20)
    assert rows[0].payload == "awesome stream!"
    assert rows[1].payload is None
    assert rows[0].ingested_at == INGESTED.replace(tzinfo=None)


def test_derived_event_id_is_stable_and_content_addressed(spark) -> None:
    same_instant = _with(timestamp="2025-07-13T14:30:20.123+02:00")
    values = [
        _with(),
        _with(),
        same_instant,
        _with(payload="other"),
        _with(event_id="given-id"),
        _with(event_id=""),
    ]
    ids = {r.kafka_offset: r.event_id for r in validate(_bronze(spark, values))[0].collect()}
    again = {r.kafka_offset: r.event_id for r in validate(_bronze(spark, values))[0].collect()}
    assert ids == again
    assert ids[0] == ids[1] == ids[2], "the same event, however its time is written, gets the same id"
    assert ids[3] != ids[0]
    assert ids[4] == "given-id"
    assert ids[5] == ids[0], "a blank event_id is treated as missing"
    assert len(ids[0]) == 64


def test_dedupe_keeps_the_first_row_by_partition_and_offset(spark) -> None:
    rows = [("a", 1, 7), ("a", 0, 9), ("a", 0, 3), ("b", 2, 1), ("b", 2, 0), ("c", 1, 5)]
    frame = spark.createDataFrame(rows, "event_id string, kafka_partition int, kafka_offset long")
    kept = {(r.event_id, r.kafka_partition, r.kafka_offset) for r in first_per_event_id(frame).collect()}
    assert kept == {("a", 0, 3), ("b", 2, 0), ("c", 1, 5)}


def test_every_row_lands_in_exactly_one_place(spark) -> None:
    values = [value for value, _ in CRAFTED] + [_with(), _with(event="like", payload=...)]
    bronze = _bronze(spark, values)
    valid, rejected = validate(bronze)
    assert valid.count() + rejected.count() == bronze.count()
    offsets = [r.kafka_offset for r in valid.collect()] + [r.kafka_offset for r in rejected.collect()]
    assert sorted(offsets) == list(range(len(values)))


@pytest.mark.parametrize("line_number", [0, 10, 45])
def test_seed_format_rows_are_valid(spark, line_number: int) -> None:
    from tests.app.test_contract import SAMPLE

    line = SAMPLE.read_text().splitlines()[line_number]
    valid, rejected = validate(_bronze(spark, [line], ingested=datetime(2025, 7, 14, tzinfo=UTC)))
    assert rejected.count() == 0
    assert valid.count() == 1


@pytest.mark.parametrize("rejected_at", [None, 1])
def test_split_checked_rows_parts_valid_events_from_rejected_records(rejected_at: int | None) -> None:
    fields = {
        f.name: f for s in (catalogue.SILVER_EVENTS, catalogue.SILVER_QUARANTINE) for f in s.arrow_schema()
    }
    schema = pa.schema(list(fields.values()))
    rows = [
        {name: None for name in schema.names}
        | {"event_id": f"e{i}", "kafka_offset": i, "reason": "bad_json" if i == rejected_at else None}
        for i in range(3)
    ]
    valid, quarantined = split_checked_rows(pa.Table.from_pylist(rows, schema))
    assert valid.column_names == catalogue.SILVER_EVENTS.arrow_schema().names
    assert quarantined.column_names == catalogue.SILVER_QUARANTINE.arrow_schema().names
    assert valid["kafka_offset"].to_pylist() == [i for i in range(3) if i != rejected_at]
    assert quarantined["kafka_offset"].to_pylist() == ([] if rejected_at is None else [rejected_at])
