"""The audience simulator: repeatable, time-ordered, and shaped like a real live audience."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime

from pulse.producer.simulator import AudienceConfig, AudienceSimulator

START = datetime(2025, 7, 13, 12, 0, tzinfo=UTC)


def _events(n: int, seed: int = 3, **config: object) -> list:
    sim = AudienceSimulator(AudienceConfig(**config), START, seed)  # type: ignore[arg-type]
    return list(itertools.islice(sim.events(), n))


def test_same_seed_same_events_other_seed_other_events() -> None:
    first = [e.to_json() for e in _events(3000)]
    assert first == [e.to_json() for e in _events(3000)]
    assert first != [e.to_json() for e in _events(3000, seed=4)]


def test_events_are_in_event_time_order_and_start_at_start() -> None:
    events = _events(20000)
    times = [e.timestamp for e in events]
    assert times == sorted(times)
    assert times[0] >= START


def test_every_event_type_appears_and_messages_have_text() -> None:
    events = _events(30000)
    kinds = Counter(e.event for e in events)
    assert set(kinds) == {"join", "leave", "heartbeat", "message", "like", "share"}
    assert all(e.payload for e in events if e.event == "message")
    assert all(e.payload is None for e in events if e.event != "message")


def test_viewers_join_first_heartbeat_every_30s_and_go_quiet_after_leaving() -> None:
    per_viewer: dict[tuple[str, str], list] = defaultdict(list)
    for event in _events(60000, mean_watch_s=300):
        per_viewer[(event.user_id, event.video_id)].append(event)
    left = vanished = 0
    for events in per_viewer.values():
        assert events[0].event == "join"
        assert all(e.event != "join" for e in events[1:])
        leaves = [i for i, e in enumerate(events) if e.event == "leave"]
        if leaves:
            left += 1
            assert leaves == [len(events) - 1], "nothing after a leave"
        beats = [e.timestamp for e in events if e.event == "heartbeat"]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(beats)]
        assert all(29 <= gap <= 31 for gap in gaps), gaps
    # Viewers who have not left yet are still watching; some of those who went did so without a leave.
    vanished = sum(1 for events in per_viewer.values() if events[-1].event != "leave")
    assert left > 0
    assert vanished > 0


def test_hype_moments_multiply_chat() -> None:
    events = _events(80000, videos=2, target_rate=200, hype_every_s=120, hype_length_s=30)
    sim = AudienceSimulator(AudienceConfig(hype_every_s=120, hype_length_s=30), START)
    chat_per_second: dict[bool, list[int]] = {True: [], False: []}
    per_second = Counter(int((e.timestamp - START).total_seconds()) for e in events if e.event == "message")
    last = int((events[-1].timestamp - START).total_seconds())
    for second in range(60, last):
        chat_per_second[sim.is_hype(second)].append(per_second.get(second, 0))
    hype = sum(chat_per_second[True]) / len(chat_per_second[True])
    calm = sum(chat_per_second[False]) / len(chat_per_second[False])
    assert hype > 4 * calm


def test_audience_sizes_differ_between_videos() -> None:
    viewers = Counter(e.video_id for e in _events(30000, videos=4) if e.event == "join")
    counts = [viewers[f"video_{i}"] for i in range(1, 5)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > 2 * counts[3]
