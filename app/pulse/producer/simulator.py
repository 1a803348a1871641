"""A live-stream audience, simulated second by second in event time.

Each video has its own audience size (a Zipf-like spread, so a few streams are big). Viewers
arrive as a Poisson process, send a heartbeat every 30 s while they watch, chat (in bursts during
hype moments), like and share, and leave after an exponential watch time; a share of them vanish
without a `leave`, which is why presence needs a time-out. A seed makes the whole run repeatable.

The simulator emits light records (event time, kind, viewer, chat line) a second at a time, and
`pulse.producer.wire` turns a few thousand of them at once into the contract's wire bytes, so the
per-event Python work stays small enough for `pulse produce --rate 0` to run at the broker's speed.
`events()` gives the same events as contract `Event`s, for tests and the fault builders.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter

from pulse.producer.options import DEFAULT_HYPE_EVERY_S, DEFAULT_RATE, DEFAULT_VIDEOS
from pulse.producer.wire import KIND_WIRE, KINDS, WireBatch, WireEncoder
from pulse_core.contract import MAX_PAYLOAD_LENGTH, Event

HEARTBEAT_S = 30
CHAT_PER_VIEWER_S = 1 / 60
LIKE_PER_VIEWER_S = 1 / 120
SHARE_PER_VIEWER_S = 1 / 900
# Events per second one watching viewer makes on average (heartbeat, chat, likes, shares).
EVENTS_PER_VIEWER_S = 1 / HEARTBEAT_S + CHAT_PER_VIEWER_S + LIKE_PER_VIEWER_S + SHARE_PER_VIEWER_S

CHAT_LINES = (
    "awesome stream!", "let's go!!", "hi from Lisbon", "what's the song?", "GG", "that was insane",
    "first time here", "lol", "can you show that again?", "🔥🔥🔥", "no way", "clip it!", "hype!!",
)  # fmt: skip


@dataclass(frozen=True)
class AudienceConfig:
    """Shape of the simulated audience.

    Attributes:
        videos: how many live streams.
        target_rate: mean events per second across all videos at steady state.
        mean_watch_s: mean watch time of a viewer.
        vanish_share: fraction of viewers who never send `leave`.
        hype_every_s: seconds between hype moments (0 disables them).
        hype_length_s: how long a hype moment lasts.
        hype_chat_factor: chat rate multiplier during a hype moment.
        chat_chars: when set, every chat message is this many characters long (a load test with
            long messages); None sends the short chat lines viewers type.
    """

    videos: int = DEFAULT_VIDEOS
    target_rate: float = DEFAULT_RATE
    mean_watch_s: float = 600.0
    vanish_share: float = 0.2
    hype_every_s: int = DEFAULT_HYPE_EVERY_S
    hype_length_s: int = 30
    hype_chat_factor: float = 8.0
    chat_chars: int | None = None

    def __post_init__(self) -> None:
        if self.videos < 1:
            raise ValueError("videos must be at least 1")
        if self.target_rate <= 0:
            raise ValueError("target_rate must be positive")
        if self.chat_chars is not None and not 1 <= self.chat_chars <= MAX_PAYLOAD_LENGTH:
            raise ValueError(f"chat_chars must be between 1 and {MAX_PAYLOAD_LENGTH}")

    def audience_weights(self) -> list[float]:
        """Share of the total audience each video holds (video 1 is the biggest)."""
        raw = [1 / (i + 1) for i in range(self.videos)]
        return [w / sum(raw) for w in raw]

    def steady_viewers(self) -> float:
        """Total concurrent viewers that produce `target_rate` events per second."""
        return self.target_rate / EVENTS_PER_VIEWER_S


HEARTBEAT, JOIN, LEAVE, MESSAGE, LIKE, SHARE = range(len(KINDS))
assert KINDS == ("heartbeat", "join", "leave", "message", "like", "share"), "kind indexes follow KINDS"
NO_PAYLOAD = -1


@dataclass
class _Viewer:
    number: int
    video: int
    leaves_at: float
    vanishes: bool
    slot: int = -1  # index in its video's active list, -1 once gone
    # Per kind, the wire bytes after the event name: `","user_id":…,"video_id":…` (and `}`).
    tails: tuple[bytes, ...] = ()
    key: bytes = b""  # the Kafka key: the video id

    @property
    def user_id(self) -> str:
        return f"user_{self.number}"

    @property
    def video_id(self) -> str:
        return f"video_{self.video + 1}"


# (microseconds after start, kind index, viewer, chat line index or NO_PAYLOAD, wire bytes after the kind)
Record = tuple[int, int, _Viewer, int, bytes]
_BY_TIME = itemgetter(0)


@dataclass
class AudienceSimulator:
    """Generates contract events in event-time order, starting at `start`.

    The work per simulated second is proportional to the events it emits, not to the audience size:
    chat, likes and shares are drawn as Poisson counts per video, heartbeats come from 30 phase buckets
    and departures from a heap.
    """

    config: AudienceConfig
    start: datetime
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _active: list[list[_Viewer]] = field(init=False, repr=False)
    _phases: list[list[_Viewer]] = field(init=False, repr=False)
    _departures: list[tuple[float, int, _Viewer]] = field(init=False, repr=False)
    _next_user: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._active = [[] for _ in range(self.config.videos)]
        self._phases = [[] for _ in range(HEARTBEAT_S)]
        self._departures = []
        self.chat_lines = chat_lines(self.config.chat_chars, self.seed)
        self._chat_wire = [
            b',"payload":' + json.dumps(line, ensure_ascii=False).encode() + b"}" for line in self.chat_lines
        ]
        self.video_keys = [f"video_{video + 1}".encode() for video in range(self.config.videos)]

    def _join(self, video: int, second: float) -> _Viewer:
        self._next_user += 1
        number = self._next_user
        identity = b'","user_id":"user_%d","video_id":"video_%d"' % (number, video + 1)
        viewer = _Viewer(
            number=number,
            video=video,
            leaves_at=second + self._rng.expovariate(1 / self.config.mean_watch_s),
            vanishes=self._rng.random() < self.config.vanish_share,
            # A message's tail stops before its payload, which each message adds.
            tails=tuple(
                kind + identity + (b"" if index == MESSAGE else b"}") for index, kind in enumerate(KIND_WIRE)
            ),
            key=self.video_keys[video],
        )
        active = self._active[video]
        viewer.slot = len(active)
        active.append(viewer)
        self._phases[self._rng.randrange(HEARTBEAT_S)].append(viewer)
        heapq.heappush(self._departures, (viewer.leaves_at, number, viewer))
        return viewer

    def _depart(self, viewer: _Viewer) -> None:
        active = self._active[viewer.video]
        last = active.pop()
        if last is not viewer:
            active[viewer.slot] = last
            last.slot = viewer.slot
        viewer.slot = -1

    def _poisson(self, mean: float) -> int:
        # Knuth's method for small means, a normal approximation for large ones.
        if mean <= 0:
            return 0
        if mean > 30:
            return max(0, round(self._rng.gauss(mean, math.sqrt(mean))))
        limit, k, product = math.exp(-mean), 0, self._rng.random()
        while product > limit:
            k += 1
            product *= self._rng.random()
        return k

    def is_hype(self, second: int) -> bool:
        """True during a hype moment (chat bursts)."""
        every = self.config.hype_every_s
        return every > 0 and second >= every and second % every < self.config.hype_length_s

    def seconds(self) -> Iterator[list[Record]]:
        """An endless stream of simulated seconds, each one's records in event-time order."""
        rng = self._rng
        random_ = rng.random
        chat_count = len(self.chat_lines)
        chat_wire = self._chat_wire
        weights = self.config.audience_weights()
        steady = self.config.steady_viewers()
        # Open with the steady-state audience arriving over the first minute.
        warmup_times = [rng.uniform(0, 60) for _ in range(round(steady))]
        warmup_videos = rng.choices(range(self.config.videos), weights=weights, k=len(warmup_times))
        arrivals = sorted(zip(warmup_times, warmup_videos, strict=True), reverse=True)
        join_rate = [steady * w / self.config.mean_watch_s for w in weights]
        second = 0
        while True:
            batch: list[Record] = []
            add = batch.append
            # Departures first, so nobody acts after leaving.
            while self._departures and self._departures[0][0] < second + 1:
                left_at, _, viewer = heapq.heappop(self._departures)
                self._depart(viewer)
                if not viewer.vanishes:
                    at = max(left_at, float(second))
                    add((int(at * 1e6), LEAVE, viewer, NO_PAYLOAD, viewer.tails[LEAVE]))
            bucket = self._phases[second % HEARTBEAT_S]
            bucket[:] = [viewer for viewer in bucket if viewer.slot >= 0]
            for viewer in bucket:
                add((int((second + random_()) * 1e6), HEARTBEAT, viewer, NO_PAYLOAD, viewer.tails[HEARTBEAT]))
            chat_rate = CHAT_PER_VIEWER_S * (self.config.hype_chat_factor if self.is_hype(second) else 1)
            for active in self._active:
                if not active:
                    continue
                size = len(active)
                # `active[int(random() * size)]` draws like rng.choice at a third of its cost.
                for _ in range(self._poisson(size * chat_rate)):
                    viewer = active[int(random_() * size)]
                    line = int(random_() * chat_count)
                    at = int((second + random_()) * 1e6)
                    add((at, MESSAGE, viewer, line, viewer.tails[MESSAGE] + chat_wire[line]))
                for kind, rate in ((LIKE, LIKE_PER_VIEWER_S), (SHARE, SHARE_PER_VIEWER_S)):
                    for _ in range(self._poisson(size * rate)):
                        viewer = active[int(random_() * size)]
                        add((int((second + random_()) * 1e6), kind, viewer, NO_PAYLOAD, viewer.tails[kind]))
            # Joins last: a viewer's first event this second is its join (later events get later times).
            while arrivals and arrivals[-1][0] < second + 1:
                at, video = arrivals.pop()
                viewer = self._join(video, at)
                add((int(at * 1e6), JOIN, viewer, NO_PAYLOAD, viewer.tails[JOIN]))
            for video, rate in enumerate(join_rate):
                for _ in range(self._poisson(rate)):
                    at = second + random_()
                    viewer = self._join(video, at)
                    add((int(at * 1e6), JOIN, viewer, NO_PAYLOAD, viewer.tails[JOIN]))
            batch.sort(key=_BY_TIME)
            yield batch
            second += 1

    def batches(self, size: int = 4096) -> Iterator[WireBatch]:
        """An endless stream of encoded batches of at least `size` events (whole simulated seconds)."""
        encoder = WireEncoder(self.start, self.seed)
        pending: list[Record] = []
        for records in self.seconds():
            pending += records
            if len(pending) >= size:
                yield WireBatch(pending, encoder.encode(pending))
                pending = []

    def event_of(self, record: Record, value: bytes) -> Event:
        """The contract `Event` of one record (its id is the one in its wire bytes)."""
        at, kind, viewer, line, _ = record
        return Event.model_construct(
            event_id=WireEncoder.event_id(value),
            timestamp=self.start + timedelta(microseconds=at),
            event=KINDS[kind],
            user_id=viewer.user_id,
            video_id=viewer.video_id,
            payload=None if line == NO_PAYLOAD else self.chat_lines[line],
        )

    def events(self) -> Iterator[Event]:
        """An endless, event-time-ordered stream of events; the caller decides when to stop."""
        for batch in self.batches():
            for record, message in zip(batch.records, batch.messages, strict=True):
                yield self.event_of(record, message["value"])


def chat_lines(chars: int | None, seed: int) -> tuple[str, ...]:
    """What viewers type: the short lines, or (for `chars`) a seeded pool of messages that long."""
    if chars is None:
        return CHAT_LINES
    rng = random.Random(seed ^ 0xC4A7)
    pool = []
    for _ in range(256):
        text = ""
        while len(text) < chars:
            text += rng.choice(CHAT_LINES) + " "
        pool.append(text[:chars].rstrip() + "!" * (chars - len(text[:chars].rstrip())))
    return tuple(pool)
