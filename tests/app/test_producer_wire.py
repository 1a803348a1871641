"""The producer's fast path: batch-encoded wire bytes, the feed's limits, and delivery accounting."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pulse.producer.feed import FeedSpec, batches
from pulse.producer.sender import KafkaSender
from pulse.producer.simulator import AudienceConfig, AudienceSimulator
from pulse_core.contract import Event

START = datetime(2025, 7, 13, 12, 0, 0, 987_654, tzinfo=UTC)


def _wire(seed: int, events: int, **config: object) -> list[bytes]:
    spec = FeedSpec(AudienceConfig(**config), START, seed, events=events)  # type: ignore[arg-type]
    return [value for batch in batches(spec) for value in batch.values]


@pytest.mark.parametrize("chat_chars", [None, 500])
def test_wire_bytes_are_the_contracts_json(chat_chars: int | None) -> None:
    sim = AudienceSimulator(AudienceConfig(chat_chars=chat_chars), START, seed=11)
    checked = 0
    for batch in itertools.islice(sim.batches(), 4):
        for record, value in zip(batch.records, batch.values, strict=True):
            event = sim.event_of(record, value)
            assert value == event.to_json().encode()
            parsed = Event.model_validate_json(value)  # valid under the contract's own rules
            assert parsed.model_dump(exclude={"timestamp"}) == event.model_dump(exclude={"timestamp"})
            assert timedelta(0) <= event.timestamp - parsed.timestamp < timedelta(milliseconds=1)
            checked += 1
    assert checked >= 4 * 4096


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    first = _wire(5, 20_000)
    assert len(first) == 20_000
    assert first == _wire(5, 20_000)
    assert first != _wire(6, 20_000)
    # A shorter run sends the start of a longer one: where the batches are cut changes nothing.
    assert _wire(5, 5_000) == first[:5_000]


def test_same_seed_same_bytes_in_another_process() -> None:
    # Another interpreter (its own hash seed, its own numpy state) sends byte-identical events.
    script = (
        "import hashlib, sys; from tests.app.test_producer_wire import _wire; "
        "sys.stdout.write(hashlib.sha256(b''.join(_wire(5, 10_000))).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert other.stdout == hashlib.sha256(b"".join(_wire(5, 10_000))).hexdigest()


def test_event_ids_are_unique_version_4_uuids() -> None:
    ids = [json.loads(value)["event_id"] for value in _wire(7, 30_000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:2000]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_long_chat_keeps_the_event_mix_and_sets_every_message_length() -> None:
    short = [json.loads(v) for v in _wire(3, 30_000)]
    long = [json.loads(v) for v in _wire(3, 30_000, chat_chars=500)]
    assert [e["event"] for e in short] == [e["event"] for e in long]
    messages = [e["payload"] for e in long if e["event"] == "message"]
    assert messages
    assert {len(text) for text in messages} == {500}
    assert len(set(messages)) > 100
    with pytest.raises(ValueError, match="chat_chars"):
        AudienceConfig(chat_chars=2001)


def test_duration_stops_at_that_much_event_time() -> None:
    spec = FeedSpec(AudienceConfig(), START, 2, duration_s=300)
    records = [record for batch in batches(spec) for record in batch.records]
    assert records
    assert records[-1][0] < 300_000_000
    longer = FeedSpec(AudienceConfig(), START, 2, duration_s=301)
    assert sum(len(b.records) for b in batches(longer)) > len(records)
    end = START + timedelta(seconds=300)
    times = [json.loads(v)["timestamp"].replace("Z", "+00:00") for b in batches(spec) for v in b.values]
    assert all(datetime.fromisoformat(t) < end for t in times)


def test_send_batch_counts_every_message_when_nothing_can_be_delivered() -> None:
    # No broker on this port, a 10-message local queue and a short timeout: the batch waits for room,
    # and every message ends with exactly one failed delivery report, named.
    sender = KafkaSender(
        {"bootstrap.servers": "127.0.0.1:9"},
        "nowhere",
        overrides={"queue.buffering.max.messages": 10, "message.timeout.ms": 300, "log_level": 0},
    )
    sender.send_batch([{"key": b"video_1", "value": b'{"n":%d}' % n} for n in range(25)])
    assert sender.flush(timeout=30) == 0
    assert (sender.stats.sent, sender.stats.delivered, sender.stats.failed) == (25, 0, 25)
    assert sender.stats.errors
    assert all("nowhere key=b'video_1'" in error for error in sender.stats.errors)
