"""The simulated audience as encoded batches, cut to `--events` / `--duration`.

The batches come in the same order with the same bytes whatever the caller does with them, so `--seed`
means the same events on every path (whole batches for the load generator, one by one otherwise).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pulse.producer.simulator import AudienceConfig, AudienceSimulator
from pulse.producer.wire import WireBatch

BATCH_EVENTS = 4096


@dataclass(frozen=True)
class FeedSpec:
    """Which events to send: the audience, its start and seed, and where to stop."""

    config: AudienceConfig
    start: datetime
    seed: int
    events: int | None = None
    duration_s: float | None = None


def batches(spec: FeedSpec, size: int = BATCH_EVENTS) -> Iterator[WireBatch]:
    """The simulator's encoded batches, stopping at `events` or at `duration_s` of event time."""
    left = spec.events
    end_us = round(spec.duration_s * 1e6) if spec.duration_s is not None else None
    if left == 0:
        return
    for batch in AudienceSimulator(spec.config, spec.start, spec.seed).batches(size):
        count = len(batch.records)
        if end_us is not None and batch.records[-1][0] >= end_us:
            count = bisect.bisect_left(batch.records, end_us, key=lambda record: record[0])
        if left is not None:
            count = min(count, left)
            left -= count
        if count < len(batch.records):
            if count:
                yield WireBatch(batch.records[:count], batch.messages[:count])
            return
        yield batch
        if left == 0:
            return


# Per batch: the Kafka messages, and the first and last event time (µs after start).
Chunk = tuple[list[dict[str, bytes]], int, int]


def chunks(spec: FeedSpec) -> Iterator[Chunk]:
    """`batches` without the simulator's records: what a sender needs."""
    for batch in batches(spec):
        yield batch.messages, batch.records[0][0], batch.records[-1][0]
