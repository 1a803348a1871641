"""`pulse produce`: simulate (or replay) an audience and send it to Kafka."""

from __future__ import annotations

import functools
import gc
import heapq
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from pulse.producer.faults import FaultInjector
from pulse.producer.feed import FeedSpec, batches, chunks
from pulse.producer.options import DEFAULT_RATE, ProduceOptions
from pulse.producer.sender import DeliveryStats, KafkaSender, tty_progress
from pulse.producer.simulator import AudienceConfig, AudienceSimulator
from pulse_core.clock import Clock, utc_now


@dataclass
class ProduceSummary:
    """What was sent and what the broker acknowledged."""

    topic: str
    seed: int | None
    sent: int
    delivered: int
    failed: int
    valid: int
    duplicates: int
    injected: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    first_event_time: str | None = None
    last_event_time: str | None = None
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def events_per_second(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s else 0.0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "events_per_second": round(self.events_per_second, 1)}, indent=2)


def _timeline(options: ProduceOptions, seed: int, clock: Clock) -> tuple[FeedSpec, bool]:
    """Which simulated events to send (audience, start, seed, limits), and whether to pace them live."""
    target = options.rate if options.rate > 0 else DEFAULT_RATE
    config = AudienceConfig(
        videos=options.videos,
        target_rate=target,
        hype_every_s=options.hype_every_s,
        chat_chars=options.chat_chars,
    )
    live = options.start is None and options.rate > 0
    if options.start is not None:
        start = options.start
    elif live:
        start = clock()
    else:
        # As fast as possible with no --start: lay the timeline so that it ends about now.
        span = options.duration_s if options.duration_s is not None else (options.events or 0) / target
        start = clock() - timedelta(seconds=span)
    return FeedSpec(config, start, seed, options.events, options.duration_s), live


def _file_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        for line in handle:
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def _key_of(value: bytes) -> str | None:
    try:
        body = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    video = body.get("video_id") if isinstance(body, dict) else None
    return video if isinstance(video, str) and video else None


class _Pacer:
    """Holds sending to `rate` messages per second (0 = no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started = time.monotonic()
        self.count = 0

    def wait(self) -> None:
        self.count += 1
        if self.rate > 0:
            ahead = self.count / self.rate - (time.monotonic() - self.started)
            if ahead > 0.002:
                time.sleep(ahead)


@dataclass
class _Tally:
    """What the sending loop has done so far (kept when it is interrupted)."""

    valid: int = 0
    duplicates: int = 0
    first_us: int | None = None
    last_us: int | None = None


# The load generator's allocations per event (a record tuple, a message dict) live for one batch of ~4,096
# events and form no cycles. At the default gen-0 threshold (700) the collector runs every ~200 events and
# walks each pending batch again and again: 10-13 % of the sending thread's time. This threshold lets a
# batch die before the collector looks; cycles, should any appear, are still collected.
LOAD_GENERATOR_GC_THRESHOLD = (100_000, 50, 100)


@contextmanager
def _gc_threshold(threshold: tuple[int, int, int]) -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*threshold)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _send_batches(spec: FeedSpec, sender: KafkaSender, tally: _Tally) -> None:
    """The load generator: whole encoded batches, one librdkafka call each."""
    with _gc_threshold(LOAD_GENERATOR_GC_THRESHOLD):
        for messages, first, last in chunks(spec):
            sender.send_batch(messages)
            tally.valid += len(messages)
            tally.first_us = first if tally.first_us is None else tally.first_us
            tally.last_us = last


def _send_one_by_one(
    options: ProduceOptions,
    spec: FeedSpec,
    live: bool,
    sender: KafkaSender,
    faults: FaultInjector,
    seed: int,
    clock: Clock,
    tally: _Tally,
) -> None:
    """Send event by event: live pacing, --rate, and the faults."""
    resend_queue: list[tuple[int, bytes, bytes]] = []  # (due at message count, key, value)
    # Late delivery: (release once event time passes this many µs after start, sequence, key, value).
    late_queue: list[tuple[int, int, bytes, bytes]] = []
    lateness = random.Random(seed ^ 0x1A7E)
    sequence = itertools.count()
    simulator = AudienceSimulator(spec.config, spec.start, spec.seed)  # builds the Events the faults need
    start_s = spec.start.timestamp()
    pacer = _Pacer(0 if live else options.rate)
    # Live, a batch is one simulated second, so nothing is encoded far ahead of its time.
    for batch in batches(spec, size=1 if live else 4096):
        for record, message in zip(batch.records, batch.messages, strict=True):
            at_us, key, value = record[0], message["key"], message["value"]
            tally.first_us = at_us if tally.first_us is None else tally.first_us
            tally.last_us = at_us
            if live:
                ahead = start_s + at_us / 1e6 - clock().timestamp()
                if ahead > 0.002:
                    time.sleep(ahead)
            else:
                pacer.wait()
            while resend_queue and resend_queue[0][0] <= sender.stats.sent:
                _, resend_key, resend_value = resend_queue.pop(0)
                sender.send(resend_key, resend_value)
                tally.duplicates += 1
            while late_queue and late_queue[0][0] <= at_us:
                _, _, held_key, held = heapq.heappop(late_queue)
                sender.send(held_key, held)
            bad = faults.malformed(functools.partial(simulator.event_of, record, value), clock)
            if bad:
                value = bad[1]
            if options.late and lateness.random() < options.late:
                release = at_us + round(lateness.uniform(0, options.max_late_s) * 1e6)
                heapq.heappush(late_queue, (release, next(sequence), key, value))
            else:
                sender.send(key, value)
            if bad is None:
                tally.valid += 1
                delay = faults.resend_after()
                if delay is not None:
                    resend_queue.append((sender.stats.sent + delay, key, value))
                    resend_queue.sort(key=lambda item: item[0])
    for _, _, key, held in sorted(late_queue):
        sender.send(key, held)
    for _, key, value in resend_queue:
        sender.send(key, value)
        tally.duplicates += 1


def _event_time(start: datetime | None, offset_us: int | None) -> str | None:
    if start is None or offset_us is None:
        return None
    return (start + timedelta(microseconds=offset_us)).isoformat()


def produce(
    options: ProduceOptions,
    client_config: dict[str, str],
    topic: str,
    *,
    clock: Clock = utc_now,
    progress: Callable[[DeliveryStats, float], None] | None = tty_progress,
    echo: Callable[[str], None] = print,
) -> ProduceSummary:
    """Send the simulated (or replayed) events and wait for every delivery report."""
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    sender = KafkaSender(client_config, topic, progress=progress)
    faults = FaultInjector(options.inject_bad, options.duplicates, seed)
    started = time.monotonic()
    tally = _Tally()
    start: datetime | None = None

    interrupted = False
    try:
        if options.from_file is not None:
            echo(
                f"Replaying {options.from_file} to {topic!r}"
                + (f" at {options.rate:g}/s" if options.rate else "")
            )
            pacer = _Pacer(options.rate)
            for value in _file_lines(options.from_file):
                pacer.wait()
                sender.send(_key_of(value), value)
        else:
            spec, live = _timeline(options, seed, clock)
            start = spec.start
            mode = "live, timed to now" if live else f"event time from {start.isoformat()}"
            echo(f"Producing to {topic!r} (seed {seed}, {options.videos} videos, {mode}).")
            if live or options.rate or options.inject_bad or options.duplicates or options.late:
                _send_one_by_one(options, spec, live, sender, faults, seed, clock, tally)
            else:
                _send_batches(spec, sender, tally)
    except KeyboardInterrupt:
        # Stop generating, but deliver what was already handed to the producer.
        interrupted = True
        echo("Interrupted: waiting for the messages already sent to be delivered…")

    undelivered = sender.flush()
    stats = sender.stats
    if progress is not None:
        progress(stats, time.monotonic() - started)
    summary = ProduceSummary(
        topic=topic,
        interrupted=interrupted,
        seed=seed if options.from_file is None else None,
        sent=stats.sent,
        delivered=stats.delivered,
        failed=stats.failed + undelivered,
        valid=tally.valid,
        duplicates=tally.duplicates,
        injected=dict(sorted(faults.injected.items())),
        elapsed_s=round(time.monotonic() - started, 3),
        first_event_time=_event_time(start, tally.first_us),
        last_event_time=_event_time(start, tally.last_us),
        errors=stats.errors
        + ([f"{undelivered} messages never got a delivery report"] if undelivered else []),
    )
    return summary
