"""The hard stream the Gold e2e tests run the pipeline over, and the checks that the lake it made is exact.

The stream: simulated audiences with late events (up to 10 minutes), duplicates and poison input, plus
same-instant ties sent in two parts, one before and one after the audiences, so that ties meet across
micro-batches (`tie_events`). The checks (with `tests.e2e.lake_checks`): every Bronze row landed once,
every poison row is quarantined with its exact bytes, Silver holds each valid event once, and Gold
equals the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pulse.producer.run import ProduceOptions, ProduceSummary, produce
from pulse_core.contract import Event
from pulse_core.settings import PulseSettings
from testkit.gold_reference import normalise_rows
from tests.e2e.lake_checks import assert_every_table_exact, rows

GOLD = ("events_by_type", "user_sessions", "video_activity")


def gold_snapshot(lake: Path) -> dict[str, list[dict]]:
    """The Gold tables' rows, in a comparable order."""
    return {
        table: sorted(normalise_rows(rows(lake, "gold", table)), key=lambda r: tuple(map(str, r.values())))
        for table in GOLD
    }


@dataclass(frozen=True)
class Sent:
    """What the stream holds: Kafka records, distinct valid events, and poison records."""

    delivered: int
    valid: int
    poison: int


def tie_events(moment: datetime) -> tuple[list[Event], list[Event], int]:
    """Events of viewers that share instants, around the minute boundary after `moment`: (sent before the
    audiences, sent after them, how many distinct events they are).

    At one instant: a heartbeat and a leave sent in different batches (the leave counts as later, for
    presence and where the session ends); a join, a leave and a second join; chat, a like and a share,
    ordered by their derived ids; ids chosen against the send order; a leave exactly at a window's end;
    a resend of one of them (a duplicate across batches); and one's id reused by another viewer.
    """
    boundary = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)

    def at(seconds: float, kind: str, user: str, video: str = "video_1", **extra: str) -> Event:
        return Event(timestamp=boundary + timedelta(seconds=seconds), event=kind, user_id=user,
                     video_id=video, **extra)  # type: ignore[arg-type]  # fmt: skip

    before = [
        at(-30, "join", "tie_a"),
        at(0, "heartbeat", "tie_a"),
        at(-10, "join", "tie_b"),
        at(-10, "leave", "tie_b"),
        at(5, "message", "tie_c", payload="first!"),
        at(20, "like", "tie_d", "video_2", event_id="tie-d-2"),
        at(40, "heartbeat", "tie_e", "video_2"),
        at(60, "leave", "tie_f", "video_3"),
    ]
    after = [
        at(0, "leave", "tie_a"),
        at(-10, "join", "tie_b", event_id="tie-b-2"),
        at(5, "like", "tie_c"),
        at(5, "message", "tie_c", payload="second"),
        at(20, "heartbeat", "tie_d", "video_2", event_id="tie-d-1"),
        at(40, "join", "tie_e", "video_2"),
        at(40, "leave", "tie_e", "video_2"),
        at(0, "join", "tie_f", "video_3"),
        at(60, "join", "tie_f", "video_3"),
        before[4],  # the same event again: one row in Silver
        # tie_d's like's id again, under another viewer: Silver keeps the first record, tie_d's like
        at(20, "share", "tie_g", "video_2", event_id="tie-d-2"),
    ]
    # Silver's identity of an event: its id, or what its id is derived from.
    identities = {
        e.event_id or (e.timestamp, e.event, e.user_id, e.video_id, e.payload) for e in before + after
    }
    return before, after, len(identities)


def _send(settings: PulseSettings, options: ProduceOptions) -> ProduceSummary:
    summary = produce(
        options, settings.kafka_client_config(), settings.kafka_topic, progress=None, echo=lambda _: None
    )
    assert summary.failed == 0
    return summary


def _file(path: Path, events: list[Event]) -> ProduceOptions:
    path.write_text("".join(event.to_json() + "\n" for event in events))
    return ProduceOptions(from_file=path, rate=0)


def produce_hard_stream(settings: PulseSettings, folder: Path, events: int, seed: int) -> Sent:
    """Send the stream: tie events, `events` simulated ones (15% up to 10 minutes late, 1% resent, 2%
    poison), then the rest of the ties. The audiences' event time ends about now; the ties fall inside it."""
    before, after, distinct = tie_events(datetime.now(UTC) - timedelta(seconds=min(events / 200, 150)))
    audiences = ProduceOptions(
        events=events, rate=0, seed=seed, late=0.15, max_late_s=600, duplicates=0.01, inject_bad=0.02
    )
    sent = [_send(settings, _file(folder / "ties-before.jsonl", before)), _send(settings, audiences),
            _send(settings, _file(folder / "ties-after.jsonl", after))]  # fmt: skip
    return Sent(
        delivered=sum(s.delivered for s in sent),
        valid=sum(s.valid for s in sent) + distinct,
        poison=sum(sum(s.injected.values()) for s in sent),
    )


def produce_late_stream(settings: PulseSettings, events: int, seed: int) -> Sent:
    """Send `events` simulated events (15% up to 10 minutes late, 1% resent, 2% poison), without the
    ties, so that several streams can go to one topic."""
    options = ProduceOptions(
        events=events, rate=0, seed=seed, late=0.15, max_late_s=600, duplicates=0.01, inject_bad=0.02
    )
    sent = _send(settings, options)
    return Sent(delivered=sent.delivered, valid=sent.valid, poison=sum(sent.injected.values()))


def assert_lake_exact(lake: Path, sent: Sent) -> None:
    """Every table exact (`assert_every_table_exact`: Gold equals the oracle), every poison record
    quarantined with its exact bytes, and the ties in Silver."""
    assert_every_table_exact(lake, sent.delivered, sent.valid, sent.poison)
    raw = {(r["partition"], r["offset"]): r["value"] for r in rows(lake, "bronze", "events_raw")}
    quarantine = rows(lake, "silver", "quarantine")
    assert all(raw[(q["kafka_partition"], q["kafka_offset"])] == q["raw_value"] for q in quarantine)
    ties = [
        r
        for r in rows(lake, "silver", "events", ["user_id", "event_time"])
        if r["user_id"].startswith("tie_")
    ]
    assert len({(r["user_id"], r["event_time"]) for r in ties}) < len(ties), "the ties reached Silver"
