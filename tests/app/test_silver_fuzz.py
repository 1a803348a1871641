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
