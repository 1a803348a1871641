"""A live-stream audience, simulated second by second in event time.

Each video has its own audience size (a Zipf-like spread, so a few streams are big). Viewers
arrive as a Poisson process, send a heartbeat every 30 s while they watch, chat (in bursts during
hype moments), like and share, and leave after an exponential watch time; a share of them vanish
without a `leave`, which is why presence needs a time-out. A seed makes the whole run repeatable.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.contract import Event

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
    """

    videos: int = 5
    target_rate: float = 100.0
    mean_watch_s: float = 600.0
    vanish_share: float = 0.2
    hype_every_s: int = 180
    hype_length_s: int = 30
    hype_chat_factor: float = 8.0

    def __post_init__(self) -> None:
        if self.videos < 1:
            raise ValueError("videos must be at least 1")
        if self.target_rate <= 0:
            raise ValueError("target_rate must be positive")

    def audience_weights(self) -> list[float]:
        """Share of the total audience each video holds (video 1 is the biggest)."""
        raw = [1 / (i + 1) for i in range(self.videos)]
        return [w / sum(raw) for w in raw]

    def steady_viewers(self) -> float:
        """Total concurrent viewers that produce `target_rate` events per second."""
        return self.target_rate / EVENTS_PER_VIEWER_S


@dataclass
class _Viewer:
    user_id: str
    video: int
    leaves_at: float
    vanishes: bool
    slot: int = -1  # index in its video's active list, -1 once gone

    @property
    def video_id(self) -> str:
        return f"video_{self.video + 1}"


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

    def _new_event_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _event(self, second: float, kind: str, viewer: _Viewer, payload: str | None = None) -> Event:
        return Event.model_construct(
            event_id=self._new_event_id(),
            timestamp=self.start + timedelta(seconds=second),
            event=kind,
            user_id=viewer.user_id,
            video_id=viewer.video_id,
            payload=payload,
        )

    def _join(self, video: int, second: float) -> _Viewer:
        self._next_user += 1
        viewer = _Viewer(
            user_id=f"user_{self._next_user}",
            video=video,
            leaves_at=second + self._rng.expovariate(1 / self.config.mean_watch_s),
            vanishes=self._rng.random() < self.config.vanish_share,
        )
        active = self._active[video]
        viewer.slot = len(active)
        active.append(viewer)
        self._phases[self._rng.randrange(HEARTBEAT_S)].append(viewer)
        heapq.heappush(self._departures, (viewer.leaves_at, self._next_user, viewer))
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

    def events(self) -> Iterator[Event]:
        """An endless, event-time-ordered stream of events; the caller decides when to stop."""
        rng = self._rng
        weights = self.config.audience_weights()
        steady = self.config.steady_viewers()
        # Open with the steady-state audience arriving over the first minute.
        warmup_times = [rng.uniform(0, 60) for _ in range(round(steady))]
        warmup_videos = rng.choices(range(self.config.videos), weights=weights, k=len(warmup_times))
        arrivals = sorted(zip(warmup_times, warmup_videos, strict=True), reverse=True)
        join_rate = [steady * w / self.config.mean_watch_s for w in weights]
        second = 0
        while True:
            batch: list[tuple[float, Event]] = []
            # Departures first, so nobody acts after leaving.
            while self._departures and self._departures[0][0] < second + 1:
                left_at, _, viewer = heapq.heappop(self._departures)
                self._depart(viewer)
                at = max(left_at, float(second))
                if not viewer.vanishes:
                    batch.append((at, self._event(at, "leave", viewer)))
            bucket = self._phases[second % HEARTBEAT_S]
            bucket[:] = [viewer for viewer in bucket if viewer.slot >= 0]
            for viewer in bucket:
                at = second + rng.random()
                batch.append((at, self._event(at, "heartbeat", viewer)))
            chat_rate = CHAT_PER_VIEWER_S * (self.config.hype_chat_factor if self.is_hype(second) else 1)
            for active in self._active:
                if not active:
                    continue
                for kind, rate in (
                    ("message", chat_rate),
                    ("like", LIKE_PER_VIEWER_S),
                    ("share", SHARE_PER_VIEWER_S),
                ):
                    for _ in range(self._poisson(len(active) * rate)):
                        viewer = rng.choice(active)
                        at = second + rng.random()
                        payload = rng.choice(CHAT_LINES) if kind == "message" else None
                        batch.append((at, self._event(at, kind, viewer, payload)))
            # Joins last: a viewer's first event this second is its join (later events get later times).
            while arrivals and arrivals[-1][0] < second + 1:
                at, video = arrivals.pop()
                batch.append((at, self._event(at, "join", self._join(video, at))))
            for video, rate in enumerate(join_rate):
                for _ in range(self._poisson(rate)):
                    at = second + rng.random()
                    batch.append((at, self._event(at, "join", self._join(video, at))))
            batch.sort(key=lambda item: item[0])
            for _, event in batch:
                yield event
            second += 1
