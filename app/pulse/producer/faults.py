"""Malformed events for every Silver reason code, and retries that resend an event.

`--inject-bad P` replaces a fraction P of the simulated events with a malformed one; the classes
rotate so that every reason code is covered. The producer counts what it injected per code, and the
tests compare those counts with Silver's quarantine.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from pulse_core.contract import (
    MAX_ID_LENGTH,
    MAX_PAYLOAD_LENGTH,
    REASON_CODES,
    REQUIRED_FIELDS,
    Event,
    format_timestamp,
)

BadEventBuilder = Callable[[Event, random.Random, datetime], bytes]


def _dump(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _body(event: Event) -> dict:
    return json.loads(event.to_json())


def _malformed_json(event: Event, rng: random.Random, _now: datetime) -> bytes:
    text = event.to_json().encode()
    variants = (
        text[: len(text) // 2],  # truncated mid-object
        b"[" + text + b"]",  # valid JSON, but not an object
        b"\xff\xfe" + text,  # not UTF-8
        b"",  # empty value
    )
    return rng.choice(variants)


def _missing(name: str) -> BadEventBuilder:
    def build(event: Event, rng: random.Random, _now: datetime) -> bytes:
        body = _body(event)
        if rng.random() < 0.5:
            body.pop(name)
        else:
            body[name] = None
        return _dump(body)

    return build


def _bad_timestamp(event: Event, rng: random.Random, _now: datetime) -> bytes:
    body = _body(event)
    body["timestamp"] = rng.choice(("2025-13-45T99:00:00Z", "yesterday", "1752409820", "13/07/2025 12:30"))
    return _dump(body)


def _unknown_event(event: Event, rng: random.Random, _now: datetime) -> bytes:
    body = _body(event)
    body["event"] = rng.choice(("dance", "JOIN", "subscribe", ""))
    return _dump(body)


def _bad_id(event: Event, rng: random.Random, _now: datetime) -> bytes:
    body = _body(event)
    field = rng.choice(("user_id", "video_id"))
    body[field] = rng.choice(("", "x" * (MAX_ID_LENGTH + 1)))
    return _dump(body)


def _empty_message(event: Event, rng: random.Random, _now: datetime) -> bytes:
    body = _body(event)
    body["event"] = "message"
    if rng.random() < 0.5:
        body.pop("payload", None)
    else:
        body["payload"] = "   "
    return _dump(body)


def _payload_too_large(event: Event, rng: random.Random, _now: datetime) -> bytes:
    body = _body(event)
    body["event"] = "message"
    body["payload"] = "spam " * (MAX_PAYLOAD_LENGTH // 5) + "!" * rng.randint(1, 50)
    return _dump(body)


def _future_timestamp(event: Event, rng: random.Random, now: datetime) -> bytes:
    body = _body(event)
    body["timestamp"] = format_timestamp(now + timedelta(hours=1, seconds=rng.randint(0, 3600)))
    return _dump(body)


BAD_EVENT_BUILDERS: dict[str, BadEventBuilder] = {
    "malformed_json": _malformed_json,
    **{f"missing_field:{name}": _missing(name) for name in REQUIRED_FIELDS},
    "bad_timestamp": _bad_timestamp,
    "unknown_event": _unknown_event,
    "bad_id": _bad_id,
    "empty_message": _empty_message,
    "payload_too_large": _payload_too_large,
    "future_timestamp": _future_timestamp,
}
assert tuple(BAD_EVENT_BUILDERS) == REASON_CODES, "every reason code needs a bad-event builder"


class FaultInjector:
    """Decides, event by event, what to send: the event, a malformed stand-in, or later a resend too."""

    def __init__(self, bad_share: float, duplicate_share: float, seed: int) -> None:
        if not 0 <= bad_share <= 1 or not 0 <= duplicate_share <= 1:
            raise ValueError("--inject-bad and --duplicates are fractions between 0 and 1")
        self.bad_share = bad_share
        self.duplicate_share = duplicate_share
        self._rng = random.Random(seed ^ 0x5EED)
        self._next_class = 0
        self.injected: dict[str, int] = {}

    def malformed(
        self, event: Callable[[], Event], clock: Callable[[], datetime]
    ) -> tuple[str, bytes] | None:
        """A malformed stand-in for the event (reason code, bytes), or None to send it as it is.

        The event and the time come as callables: they are built only for the few events replaced.
        """
        if self.bad_share == 0 or self._rng.random() >= self.bad_share:
            return None
        code = REASON_CODES[self._next_class % len(REASON_CODES)]
        self._next_class += 1
        self.injected[code] = self.injected.get(code, 0) + 1
        return code, BAD_EVENT_BUILDERS[code](event(), self._rng, clock())

    def resend_after(self) -> int | None:
        """How many messages later to resend the event just sent (a retry), or None for no resend."""
        if self.duplicate_share == 0 or self._rng.random() >= self.duplicate_share:
            return None
        return self._rng.randint(1, 2000)
