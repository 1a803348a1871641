"""Which Kafka record holds each event_id the driver's recent state covers: Silver's dedupe on the driver.

A dict from the id's string to its record cost about 154 B an event, the larger part of the recent
state's 250 (issue 22: 0.5 GB at 2,000 events/s, 8-9 GB at 35k). `EventIndex` keeps 40 B an event in
numpy arrays: a 128-bit hash of the id (two SipHash-2-4 values, with keys drawn per process, so no input
can be crafted to collide; two distinct ids collide with a probability of about n² / 2^129), the record,
the event time, which is what the state drops by, and a hash of the viewer (user_id, video_id), which
tells a copy of another viewer's event (`RecentState.copies_of_other_viewers`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# A record's coordinate where an id is not held.
ABSENT = -1
# SipHash keys (16 characters each), new in every process: the index lives in memory only.
_KEYS = (secrets.token_hex(8), secrets.token_hex(8))


# An id's two 64-bit hashes, per id (`id_hashes`).
Hashes = tuple[np.ndarray, np.ndarray]


def id_hashes(ids: pa.Array | pa.ChunkedArray) -> Hashes:
    """The ids' two 64-bit hashes (uint64), which together name an id."""
    values = ids.to_numpy(zero_copy_only=False)
    return tuple(pd.util.hash_array(values, hash_key=key, categorize=False) for key in _KEYS)  # type: ignore[return-value]


def viewer_hashes(users: pa.Array | pa.ChunkedArray, videos: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit hash (uint64) of each (user_id, video_id); viewers repeat, so each is hashed once."""
    user, video = (_hash_repeated(column) for column in (users, videos))
    return pd.util.hash_array(user * np.uint64(0x9E3779B97F4A7C15) ^ video, categorize=False)


def _hash_repeated(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each value's hash (uint64), hashing each distinct value once: Arrow finds them on the bytes, with no
    Python string a row (`pd.util.hash_array(..., categorize=True)` built one a row first)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    if encoded.null_count:
        return pd.util.hash_array(column.to_numpy(zero_copy_only=False), hash_key=_KEYS[0], categorize=True)
    names = encoded.dictionary.to_numpy(zero_copy_only=False)
    hashes = pd.util.hash_array(np.asarray(names, dtype=object), hash_key=_KEYS[0], categorize=False)
    return hashes[encoded.indices.to_numpy(zero_copy_only=False)]


@dataclass(frozen=True)
class _Run:
    """Entries sorted by their first hash."""

    first: np.ndarray
    second: np.ndarray
    record: np.ndarray
    time: np.ndarray
    viewer: np.ndarray

    @classmethod
    def sorted(cls, *columns: np.ndarray) -> _Run:
        order = np.argsort(columns[0], kind="stable")
        return cls(*(column[order] for column in columns))

    def __len__(self) -> int:
        return len(self.first)

    def columns(self) -> tuple[np.ndarray, ...]:
        return self.first, self.second, self.record, self.time, self.viewer

    def where(self, keep: np.ndarray) -> _Run:
        return _Run(*(column[keep] for column in self.columns()))


class EventIndex:
    """event_id → its Kafka record (partition above bit 40, then the offset), event time and viewer.

    Entries live in sorted runs: a batch's ids become a run, and a run at least half the size of the one
    before it merges into it, so an id is merged a logarithmic number of times and a lookup searches a
    few runs.
    """

    def __init__(self) -> None:
        self._runs: list[_Run] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    @property
    def nbytes(self) -> int:
        """The memory the entries take."""
        return sum(column.nbytes for run in self._runs for column in run.columns())

    def add(
        self,
        ids: pa.Array | pa.ChunkedArray,
        records: np.ndarray,
        times: np.ndarray,
        viewers: np.ndarray,
        hashes: Hashes | None = None,
    ) -> None:
        """Hold these ids (none of them held yet) with their records, event times in µs and viewers
        (`viewer_hashes`); `hashes`, their `id_hashes` if the caller has them already."""
        if not len(ids):
            return
        first, second = hashes or id_hashes(ids)
        columns = (np.asarray(records, np.int64), np.asarray(times, np.int64), np.asarray(viewers, np.uint64))
        self._runs.append(_Run.sorted(first, second, *columns))
        while len(self._runs) > 1 and 2 * len(self._runs[-1]) >= len(self._runs[-2]):
            newer, older = self._runs.pop(), self._runs.pop()
            merged = (np.concatenate(pair) for pair in zip(older.columns(), newer.columns(), strict=True))
            self._runs.append(_Run.sorted(*merged))

    def records(self, ids: pa.Array | pa.ChunkedArray, hashes: Hashes | None = None) -> np.ndarray:
        """Each id's record (int64), or `ABSENT` where the index does not hold it."""
        return self.find(ids, hashes)[0]

    def find(
        self, ids: pa.Array | pa.ChunkedArray, hashes: Hashes | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each id's record (int64, `ABSENT` where the index does not hold it) and viewer (uint64);
        `hashes`, the ids' `id_hashes` if the caller has them already."""
        found = np.full(len(ids), ABSENT, np.int64)
        viewers = np.zeros(len(ids), np.uint64)
        if not self._runs or not len(ids):
            return found, viewers
        first, second = hashes or id_hashes(ids)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run.first, first), len(run) - 1)
            same_first = run.first[at] == first
            hit = same_first & (run.second[at] == second)
            # Ids that share their first hash with another id (about n² / 2^65 pairs): the run's
            # entries with that first hash, in order.
            for i in np.flatnonzero(same_first & ~hit):
                j = at[i] + 1
                while j < len(run) and run.first[j] == first[i]:
                    if run.second[j] == second[i]:
                        at[i], hit[i] = j, True
                        break
                    j += 1
            found[hit] = run.record[at[hit]]
            viewers[hit] = run.viewer[at[hit]]
        return found, viewers

    def drop_before(self, time: int) -> None:
        """Forget the ids of events before `time` (µs)."""
        runs = [run.where(run.time >= time) for run in self._runs]
        self._runs = [run for run in runs if len(run)]
