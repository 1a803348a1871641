"""The contract's wire bytes for thousands of simulated events at once.

`Event.to_json()` costs several microseconds an event in Python; at wire speed the producer has about
six for everything. Every simulated event's JSON is a fixed-width head, `{"event_id":"<uuid>",
"timestamp":"<time>","event":"`, which numpy fills for a whole batch (random ids, formatted times),
then a tail the simulator keeps per viewer and kind (`heartbeat","user_id":"user_7","video_id":"video_1"}`).
One bytes concatenation per event joins them. The bytes are the ones `Event.to_json()` gives (a test
checks them), so Silver and the fault builders see no difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

KINDS: tuple[str, ...] = ("heartbeat", "join", "leave", "message", "like", "share")
KIND_WIRE: tuple[bytes, ...] = tuple(kind.encode() for kind in KINDS)

_ID_AT = 13  # len('{"event_id":"')
_TIME_AT = _ID_AT + 36 + len('","timestamp":"')
_HEAD = b'{"event_id":"' + b"-" * 36 + b'","timestamp":"' + b"0" * 23 + b'Z","event":"'
_HEAD_ROW = np.frombuffer(_HEAD, dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Where the 32 hex digits of a UUID go among its 36 characters (the rest are dashes).
_HEX_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)]) + _ID_AT
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# The time of day as text, a table per field: `HH:MM` of each minute, `SS` and `mmm`.
_HH_MM = np.frombuffer(b"".join(b"%02d:%02d" % divmod(m, 60) for m in range(1440)), np.uint8).reshape(-1, 5)
_SS = np.frombuffer(b"".join(b"%02d" % s for s in range(60)), np.uint8).reshape(-1, 2)
_MMM = np.frombuffer(b"".join(b"%03d" % ms for ms in range(1000)), np.uint8).reshape(-1, 3)
_DAY_MS = 86_400_000


def _iso_millis(epoch_us: np.ndarray) -> np.ndarray:
    """`YYYY-MM-DDTHH:MM:SS.mmm` of each time (µs since the epoch, UTC, truncated to the millisecond),
    as rows of ASCII bytes.

    numpy's `datetime_as_string` takes most of a microsecond an event; a batch spans a few days at most,
    so only its distinct days go through it, and the time of day is looked up field by field.
    """
    days, of_day = np.divmod(epoch_us // 1000, _DAY_MS)
    distinct, which = np.unique(days, return_inverse=True)
    dates = np.datetime_as_string(distinct.astype("datetime64[D]"), unit="D").astype("S10")
    minute, of_minute = np.divmod(of_day, 60_000)
    second, milli = np.divmod(of_minute, 1000)
    out = np.empty((len(days), 23), dtype=np.uint8)
    out[:, :10] = dates.view(np.uint8).reshape(len(distinct), 10)[which.ravel()]
    out[:, 10], out[:, 16], out[:, 19] = ord("T"), ord(":"), ord(".")
    out[:, 11:16] = _HH_MM[minute]
    out[:, 17:19] = _SS[second]
    out[:, 20:23] = _MMM[milli]
    return out


@dataclass
class WireBatch:
    """Events in send order: the simulator's records, and their Kafka messages (`key`, `value`).

    The messages are the dicts `Producer.produce_batch` takes, built in the same pass as the values.
    """

    records: list[Any]
    messages: list[dict[str, bytes]]

    @property
    def keys(self) -> list[bytes]:
        return [message["key"] for message in self.messages]

    @property
    def values(self) -> list[bytes]:
        return [message["value"] for message in self.messages]


class WireEncoder:
    """Encodes records (microseconds after `start`, ..., tail bytes) into contract JSON values.

    Event ids are random version-4 UUIDs drawn from a generator seeded with `seed`, so the same seed
    gives the same ids.
    """

    def __init__(self, start: datetime, seed: int) -> None:
        moment = start if start.tzinfo else start.replace(tzinfo=UTC)
        self._start_us = (moment - _EPOCH) // np.timedelta64(1, "us").item()
        self._ids = np.random.Generator(np.random.PCG64(seed ^ 0x1D5))

    def heads(self, offsets_us: Sequence[int]) -> list[bytes]:
        """The fixed-width heads (id and timestamp) of events at these offsets from start."""
        n = len(offsets_us)
        head = np.empty((n, len(_HEAD)), dtype=np.uint8)
        head[:] = _HEAD_ROW
        raw = np.frombuffer(self._ids.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
        digits = np.empty((n, 32), dtype=np.uint8)
        digits[:, 0::2] = _HEX[raw >> 4]
        digits[:, 1::2] = _HEX[raw & 0x0F]
        head[:, _HEX_COLUMNS] = digits
        head[:, _TIME_AT : _TIME_AT + 23] = _iso_millis(
            np.asarray(offsets_us, dtype=np.int64) + self._start_us
        )
        return head.view(f"S{len(_HEAD)}").ravel().tolist()

    def encode(self, records: Sequence[Any]) -> list[dict[str, bytes]]:
        """The Kafka message of every record: its viewer's video as the key; as the value, its head
        then its tail (`record[-1]`)."""
        heads = self.heads([record[0] for record in records])
        return [
            {"key": record[2].key, "value": head + record[-1]}
            for head, record in zip(heads, records, strict=True)
        ]

    @staticmethod
    def event_id(value: bytes) -> str:
        """The event id inside an encoded value."""
        return value[_ID_AT : _ID_AT + 36].decode()
