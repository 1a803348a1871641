"""Poison input: arbitrary bytes and JSON never break the Silver parser, and every row lands somewhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse_core.contract import REASON_CODES
from tests.app.test_silver_transforms import _bronze

pytestmark = pytest.mark.fault

INGESTED = datetime(2025, 7, 13, 12, 31, tzinfo=UTC)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(
        ["join", "leave", "message", "like", "2025-07-13T12:30:20Z", "2025-07-13 12:30", "", " "]
    ),
    st.text(min_size=120, max_size=140),
)
near_events = st.fixed_dictionaries(
    {},
    optional={
        name: field_values
        for name in ("event_id", "timestamp", "event", "user_id", "video_id", "payload", "extra")
    },
).map(lambda body: json.dumps(body).encode())
poison = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_events,
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(poison, min_size=20, max_size=120))
def test_parser_never_raises_and_loses_nothing(spark, values: list[bytes]) -> None:
    from pulse.transforms.silver import validate

    bronze = _bronze(spark, values, ingested=INGESTED)
    valid, rejected = validate(bronze)
    valid_rows, rejected_rows = valid.collect(), rejected.collect()
    offsets = sorted([r.kafka_offset for r in valid_rows] + [r.kafka_offset for r in rejected_rows])
    assert offsets == list(range(len(values)))
    assert {r.reason for r in rejected_rows} <= set(REASON_CODES)
    for row in valid_rows:
        assert all((row.event_id, row.event_time, row.user_id, row.video_id))
        assert row.event in ("join", "leave", "heartbeat", "message", "like", "share")


def _is_object_in_two_passes():
    """The object test Silver made before session 10: `json_object_keys` over the value, then `from_json`."""
    from pyspark.sql import functions as F

    text = F.col("value").cast("string")
    keys = F.when(F.is_valid_utf8(text), F.json_object_keys(text))
    return text.isNotNull() & F.is_valid_utf8(text) & keys.isNotNull()


# Values at the edges of "a JSON object": whitespace, trailing text, two objects, a byte-order mark, the
# parser's own corrupt-record field name, truncation, a nested object as a field, what JSON does not allow.
EDGES = [
    b'{"event": "join"} trailing', b'{"a": 1}{"b": 2}', b' \n\t{"event": "join"}', b"\x0b{}", b"\x0c{}",
    b"{}", b"  ", b"", b"null", b"true", b"42", b'"{}"', b'[{"event": "join"}]', b"[]", b"{", b"}",
    b'{"_unparsable": "x", "event": "join"}', b"\xef\xbb\xbf{}", b'{"event": "join"', b'{"a": }',
    b'{"timestamp": {"nested": [1, 2]}, "event": "join"}', b"{'event': 'join'}", b'{"a": NaN}',
    b'{"a": Infinity}', b'{"a": 1,}', b'{"a": 01}', b'{"a": "\\u00e9"}',
]  # fmt: skip
# A raw control character inside a string is not JSON: `json_object_keys` skipped over it and called the
# value an object (whose fields `from_json` then failed to read: a `missing_field`); one pass rejects it.
RAW_CONTROL = b'{"timestamp": "2025-07-13T12:30:20Z", "event": "join", "user_id": "u\x01", "video_id": "v"}'


def _compared(value: bytes) -> bool:
    """Whether the two tests must agree on `value`: always for the edges, else when it holds no control
    byte (JSON text from `json.dumps` never does; raw bytes and text may hold one inside a string)."""
    return value in EDGES or not any(byte < 0x20 for byte in value)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(poison, st.sampled_from(EDGES)), min_size=20, max_size=120))
def test_one_json_pass_tells_objects_as_json_object_keys_did(spark, values: list[bytes]) -> None:
    from pulse.transforms.silver import parse_events, validate

    given_values = [RAW_CONTROL, *EDGES, *values]
    rows = (
        parse_events(_bronze(spark, given_values, ingested=INGESTED))
        .select("offset", "_is_object", _is_object_in_two_passes().alias("reference"))
        .collect()
    )
    assert len(rows) == len(given_values)
    differing = [
        (value, r._is_object, r.reference)
        for r in rows
        if r._is_object != bool(r.reference) and _compared(value := given_values[r.offset])
    ]
    assert differing == []
    assert [(r._is_object, r.reference) for r in rows if r.offset == 0] == [(False, True)]
    _, rejected = validate(_bronze(spark, [RAW_CONTROL], ingested=INGESTED))
    assert [row.reason for row in rejected.collect()] == ["malformed_json"]
