"""A confluent-kafka producer that counts every delivery report and says plainly when one fails."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

# Throughput settings: lz4, short linger so live events stay fresh, large batches under load.
PRODUCER_DEFAULTS: dict[str, str | int | bool] = {
    "acks": "all",
    "enable.idempotence": True,
    "compression.type": "lz4",
    "linger.ms": 10,
    "batch.size": 512 * 1024,
    "batch.num.messages": 20000,
    "queue.buffering.max.messages": 500000,
    "queue.buffering.max.kbytes": 512 * 1024,
    "message.timeout.ms": 120000,
}


@dataclass
class DeliveryStats:
    """What the broker acknowledged, and what it did not."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def record(self, error: KafkaError | None, message: Message | _Refused) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        if len(self.errors) < 10:
            where = f"{message.topic()} key={message.key()!r}"
            self.errors.append(f"{where}: {error.str()}")


@dataclass(frozen=True)
class _Refused:
    """Stands in for the Message of one that librdkafka refused to queue (no delivery report follows)."""

    _topic: str
    _key: bytes | None

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes | None:
        return self._key


class KafkaSender:
    """Sends raw values keyed by video id, counting delivery callbacks."""

    def __init__(
        self,
        client_config: dict[str, str],
        topic: str,
        *,
        progress: Callable[[DeliveryStats, float], None] | None = None,
        overrides: dict[str, str | int | bool] | None = None,
    ) -> None:
        self.topic = topic
        self.stats = DeliveryStats()
        self._producer = Producer({**PRODUCER_DEFAULTS, **client_config, **(overrides or {})})
        self._progress = progress
        self._started = time.monotonic()
        self._last_progress = self._started

    def send(self, key: str | bytes | None, value: bytes) -> None:
        """Queue one message; blocks briefly (serving callbacks) when the local queue is full."""
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self.stats.record)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.stats.sent += 1
        if self.stats.sent % 1000 == 0:
            self._producer.poll(0)
            self._maybe_progress()

    def send_batch(self, messages: list[dict[str, Any]]) -> None:
        """Queue many messages (`key`, `value` dicts) in one call (librdkafka's batch API), in order.

        The accounting is `send`'s: one delivery report each, or counted as failed if refused.
        """
        record = self.stats.record
        while messages:
            queued = self._producer.produce_batch(self.topic, messages, on_delivery=record)
            self.stats.sent += queued
            if queued == len(messages):
                break
            # Room in the local queue frees only when poll() serves reports, so what a full queue refused
            # is the batch's tail, still in order: wait it out. Anything else refused fails, named.
            refused = [message for message in messages if "_error" in message]
            messages = []
            for message in refused:
                error = message.pop("_error")
                if error.code() == KafkaError._QUEUE_FULL:
                    messages.append(message)
                else:
                    self.stats.sent += 1
                    self.stats.record(error, _Refused(self.topic, message["key"]))
            if messages:
                self._producer.poll(0.05)
        self._producer.poll(0)
        self._maybe_progress()

    def _maybe_progress(self) -> None:
        now = time.monotonic()
        if self._progress is not None and now - self._last_progress >= 0.5:
            self._last_progress = now
            self._progress(self.stats, now - self._started)

    def flush(self, timeout: float = 120.0) -> int:
        """Wait for every delivery report. Returns how many messages are still undelivered."""
        deadline = time.monotonic() + timeout
        remaining = len(self._producer)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
            self._maybe_progress()
        return remaining

    def poll(self) -> None:
        """Serve delivery callbacks without blocking."""
        self._producer.poll(0)


def tty_progress(stats: DeliveryStats, elapsed: float) -> None:
    """One self-overwriting progress line on a terminal: rate, delivered, failed."""
    if not sys.stderr.isatty():
        return
    rate = stats.sent / elapsed if elapsed else 0.0
    sys.stderr.write(
        f"\r  sent {stats.sent:,}  delivered {stats.delivered:,}  failed {stats.failed:,}"
        f"  {rate:,.0f} ev/s   "
    )
    sys.stderr.flush()
