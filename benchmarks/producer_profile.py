"""Where `pulse produce --rate 0` spends its time, per event: the simulator, the encoding, the produce
calls and the delivery reports (`python -m benchmarks.producer_profile [--events N] [--chat-chars C]`).

It runs the CLI's own `produce` (the load generator's path) against a broker of its own, with a timer
around each cost: the simulator's seconds, `WireEncoder.encode`, `produce_batch`, and `poll` (where
librdkafka serves the delivery reports, one Python callback each). It prints one JSON line: each cost's
share of the sending thread's CPU time and wall time, its microseconds per event, and the CPU time of
librdkafka's own threads. Shares stay meaningful on a busy machine; the absolute figures do not.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.harness import broker, create_topic, workspace
from pulse.producer import run as produce_module
from pulse.producer.options import ProduceOptions
from pulse.producer.sender import KafkaSender
from pulse.producer.simulator import AudienceSimulator
from pulse.producer.wire import WireEncoder


class Costs:
    """Wall and thread CPU seconds per named cost."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - wall
                self.cpu[name] += time.thread_time() - cpu

        return timed_call

    def timed_iterator(self, name: str, items: Iterator[Any]) -> Iterator[Any]:
        step = self.timed(name, items.__next__)
        while True:
            try:
                yield step()
            except StopIteration:
                return


class _TimedProducer:
    """The sender's confluent-kafka Producer with a timer around each call the sender makes."""

    def __init__(self, producer: Any, costs: Costs) -> None:
        self._producer = producer
        self.produce_batch = costs.timed("produce calls", producer.produce_batch)
        self.poll = costs.timed("delivery reports (poll)", producer.poll)
        self.flush = costs.timed("last acknowledgements (flush)", producer.flush)

    def __len__(self) -> int:
        return len(self._producer)


def instrument(costs: Costs) -> None:
    """Put the timers around the four costs (this process only)."""
    seconds, encode, sender_init = AudienceSimulator.seconds, WireEncoder.encode, KafkaSender.__init__

    def timed_seconds(simulator: AudienceSimulator) -> Iterator[Any]:
        return costs.timed_iterator("simulator", seconds(simulator))

    def timed_init(sender: KafkaSender, *args: Any, **kwargs: Any) -> None:
        sender_init(sender, *args, **kwargs)
        sender._producer = _TimedProducer(sender._producer, costs)  # type: ignore[assignment]

    AudienceSimulator.seconds = timed_seconds  # type: ignore[method-assign, assignment]
    WireEncoder.encode = costs.timed("encoding", encode)  # type: ignore[method-assign]
    KafkaSender.__init__ = timed_init  # type: ignore[method-assign, assignment]


def profile(events: int, chat_chars: int | None) -> dict[str, Any]:
    costs = Costs()
    instrument(costs)
    with workspace("producer-profile") as ws, broker(ws):
        create_topic(ws.bootstrap, "profile")
        client = {"bootstrap.servers": ws.bootstrap}
        options = ProduceOptions.model_validate(
            {"events": events, "rate": 0, "seed": 8, "chat_chars": chat_chars}
        )
        wall, cpu, process = time.perf_counter(), time.thread_time(), os.times()
        summary = produce_module.produce(options, client, "profile", progress=None, echo=lambda _: None)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        after = os.times()
    process_cpu = after.user - process.user + after.system - process.system
    if summary.failed or summary.delivered != summary.sent:
        raise RuntimeError(f"{summary.failed} deliveries failed: {summary.errors}")

    def shares(seconds: dict[str, float], total: float) -> dict[str, float]:
        named = {name: round(100 * value / total, 1) for name, value in seconds.items()}
        return dict(sorted(named.items(), key=lambda item: -item[1])) | {
            "other": round(100 * (total - sum(seconds.values())) / total, 1)
        }

    return {
        "events": summary.sent,
        "delivered": summary.delivered,
        "chat_chars": chat_chars,
        "events_per_s": round(summary.events_per_second),
        "sending_thread": {
            "cpu_share_pct": shares(costs.cpu, cpu),
            "wall_share_pct": shares(costs.wall, wall),
            "cpu_us_per_event": {
                name: round(1e6 * value / summary.sent, 2) for name, value in costs.cpu.items()
            },
            "cpu_us_per_event_total": round(1e6 * cpu / summary.sent, 2),
            "cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2),
        },
        "librdkafka_threads_cpu_us_per_event": round(1e6 * (process_cpu - cpu) / summary.sent, 2),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.producer_profile", description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--chat-chars", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(profile(args.events, args.chat_chars)))


if __name__ == "__main__":
    main()
