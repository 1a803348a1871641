"""Freshness probes: send timestamped probe events and watch Gold with deltalake until each one shows.

`python -m benchmarks.probe --bootstrap B --topic T --lake L --probes N --rate R --out F`

Each probe is a valid `like` event on a dedicated video (`bench_probe`), from its own user
(`probe_<run>_<n>`), with the send instant as its event time. Because the video is the Kafka key, all
probes land in one partition in send order. Probe n counts as visible in Gold at the first poll where
  - `gold.user_sessions` holds the session of its user on the probe video, and
  - `gold.events_by_type` counts at least r likes for the probe video in n's minute window, where r
    is n's rank among the probes sent in that window (in-order delivery makes this exact: the count
    reaches r only once probe n itself is counted).
So both the session MERGE and the window MERGE of the batch that holds the probe must be committed.
The poller reads both tables every `--poll-s` seconds (in a thread); the probe's latency is the time
of the poll's snapshot minus its send time, so it is exact to within one poll interval.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Producer
from deltalake import DeltaTable

from pulse.producer.sender import PRODUCER_DEFAULTS
from pulse_core.contract import Event

PROBE_VIDEO = "bench_probe"


class Probes:
    """What was sent and when each probe became visible."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: dict[str, tuple[float, datetime, int]] = {}  # user → (wall send time, window, rank)
        self.window_ranks: dict[datetime, int] = {}
        self.visible: dict[str, float] = {}
        self.polls = 0
        self.poll_seconds = 0.0

    def record_send(self, user: str, sent_at: float, moment: datetime) -> None:
        window = _window_key(moment.replace(second=0, microsecond=0))
        with self.lock:
            rank = self.window_ranks.get(window, 0) + 1
            self.window_ranks[window] = rank
            self.sent[user] = (sent_at, window, rank)


def _window_key(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def poll_forever(lake: str, probes: Probes, stop: threading.Event, interval: float) -> None:
    """Mark probes visible, poll after poll, until `stop`."""
    sessions_path, counts_path = f"{lake}/gold/user_sessions", f"{lake}/gold/events_by_type"
    while not stop.is_set():
        began = time.time()
        try:
            sessions = DeltaTable(sessions_path)
            counts = DeltaTable(counts_path)
            snapshot_at = time.time()
            # Filtered after the scan: files delta-rs's MERGE wrote (earlier Pulse, and the baseline) hold
            # strings as Arrow string views, which a pyarrow scan filter cannot compare
            # (see pulse_dashboard.gold.time_filter).
            held = sessions.to_pyarrow_dataset().to_table(columns=["user_id", "video_id"])
            users = set(
                held.filter(pc.equal(held["video_id"].cast(pa.string()), PROBE_VIDEO))["user_id"].to_pylist()
            )
            rows = counts.to_pyarrow_dataset().to_table(
                columns=["window_start", "video_id", "event", "event_count"]
            )
            rows = rows.filter(
                pc.and_(
                    pc.equal(rows["video_id"].cast(pa.string()), PROBE_VIDEO),
                    pc.equal(rows["event"].cast(pa.string()), "like"),
                )
            )
        except Exception:  # the tables may not exist yet, or a commit is being written
            stop.wait(interval)
            continue
        window_counts: dict[datetime, int] = {}
        for window, count in zip(
            rows["window_start"].to_pylist(), rows["event_count"].to_pylist(), strict=True
        ):
            window_counts[_window_key(window)] = count
        with probes.lock:
            for user, (_, window, rank) in probes.sent.items():
                if user not in probes.visible and user in users and window_counts.get(window, 0) >= rank:
                    probes.visible[user] = snapshot_at
            probes.polls += 1
            probes.poll_seconds += time.time() - began
        stop.wait(max(0.0, interval - (time.time() - began)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="Probes per second.")
    parser.add_argument("--poll-s", type=float, default=0.25)
    parser.add_argument("--warmup-timeout-s", type=float, default=300)
    parser.add_argument(
        "--steady-s", type=float, default=10.0, help="Warm-up ends once 3 probes show within this."
    )
    parser.add_argument("--drain-timeout-s", type=float, default=120)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:6]
    producer = Producer({**PRODUCER_DEFAULTS, "bootstrap.servers": args.bootstrap})
    probes = Probes()
    stop = threading.Event()
    poller = threading.Thread(target=poll_forever, args=(args.lake, probes, stop, args.poll_s), daemon=True)
    poller.start()

    def send(user: str) -> None:
        sent_at = time.time()
        moment = datetime.fromtimestamp(sent_at, UTC)
        event = Event(
            event_id=f"{user}-e", timestamp=moment, event="like", user_id=user, video_id=PROBE_VIDEO
        )
        probes.record_send(user, sent_at, moment)
        producer.produce(args.topic, key=PROBE_VIDEO, value=event.to_json().encode())
        producer.poll(0)

    # Warm-up: one probe a second until the pipeline has started and worked off its start-up backlog:
    # three warm-up probes shown in Gold within `--steady-s` of their send. (The first probe to show is
    # not enough: it shows with the first batch, which a backlog of cold-start batches follows.)
    warm_began = time.time()
    warmed = False
    n = 0
    while time.time() - warm_began < args.warmup_timeout_s:
        send(f"warm_{run_id}_{n}")
        n += 1
        time.sleep(1)
        with probes.lock:
            quick = [
                user
                for user, seen in probes.visible.items()
                if user.startswith("warm_") and seen - probes.sent[user][0] <= args.steady_s
            ]
        if len(quick) >= 3:
            warmed = True
            break
    warmup_s = time.time() - warm_began

    measured_began = time.time()
    users = [f"probe_{run_id}_{i:05d}" for i in range(args.probes)]
    for i, user in enumerate(users):
        due = measured_began + i / args.rate
        time.sleep(max(0.0, due - time.time()))
        send(user)
    sending_ended = time.time()
    undelivered = producer.flush(30)
    deadline = time.time() + args.drain_timeout_s
    while time.time() < deadline:
        with probes.lock:
            if all(user in probes.visible for user in users):
                break
        time.sleep(0.25)
    stop.set()
    poller.join(timeout=10)
    with probes.lock:
        latencies = [probes.visible[u] - probes.sent[u][0] for u in users if u in probes.visible]
        missing = [u for u in users if u not in probes.visible]
        result = {
            "warmed_up": warmed,
            "warmup_s": round(warmup_s, 1),
            "steady_s": args.steady_s,
            "measured_from": measured_began,
            "measured_until": time.time(),
            "sending_s": round(sending_ended - measured_began, 1),
            "probes": len(users),
            "visible": len(latencies),
            "missing": len(missing),
            "undelivered": undelivered,
            "latencies_s": [round(x, 3) for x in latencies],
            "polls": probes.polls,
            "mean_poll_s": round(probes.poll_seconds / probes.polls, 3) if probes.polls else None,
            "poll_interval_s": args.poll_s,
        }
    with open(args.out, "w") as handle:
        json.dump(result, handle)
    print(json.dumps({k: v for k, v in result.items() if k != "latencies_s"}))


if __name__ == "__main__":
    main()
