"""`EventIndex`, the driver's dedupe index: the same answers as a dict of the ids, in 40 B an event, also
when ids share a hash; and `RecentState.copies_of_other_viewers` through it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulse.jobs import event_index
from pulse.jobs.event_index import ABSENT, EventIndex

# A history: batches of (id number, event time) to add, each followed by a floor to drop before.
History = list[tuple[list[tuple[int, int]], int]]
EVENTS = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 1000)), max_size=40)
BATCHES = st.lists(st.tuples(EVENTS, st.integers(0, 700)), max_size=12)


def _replay(history: History) -> None:
    """Apply `history` to an index and to a dict, as `RecentState` does (an id held already is not added
    again), and compare every id's record after each step."""
    index, reference = EventIndex(), {}
    record = 0
    for batch, floor in history:
        fresh: dict[str, tuple[int, int]] = {}
        for number, time in batch:
            event_id = f"event-{number}"
            if event_id not in reference and event_id not in fresh:
                record += 1
                fresh[event_id] = (record, time)
        ids = pa.array(list(fresh), pa.string())
        records = np.array([r for r, _ in fresh.values()])
        index.add(ids, records, np.array([t for _, t in fresh.values()]), records.astype(np.uint64) % 7)
        reference |= fresh
        asked = pa.array([f"event-{n}" for n in range(401)], pa.string())
        expected = [reference[i][0] if i in reference else ABSENT for i in asked.to_pylist()]
        found, viewers = index.find(asked)
        assert found.tolist() == expected
        assert viewers.tolist() == [r % 7 if r != ABSENT else 0 for r in expected]
        index.drop_before(floor)
        reference = {i: (r, t) for i, (r, t) in reference.items() if t >= floor}
        assert len(index) == len(reference)
        assert index.records(asked).tolist() == [
            reference[i][0] if i in reference else ABSENT for i in asked.to_pylist()
        ]


@settings(max_examples=60, deadline=None)
@given(BATCHES)
def test_the_index_answers_as_a_dict_of_the_ids_does(
    history: History,
) -> None:
    _replay(history)


@settings(max_examples=40, deadline=None)
@given(BATCHES)
def test_ids_that_share_their_first_hash_are_told_apart_by_the_second(
    history: History,
) -> None:
    # Three values of the first hash for 401 ids: long runs of equal first hashes in every sorted run.
    def weak(ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        values = ids.to_numpy(zero_copy_only=False)
        second = pd.util.hash_array(values, hash_key="0123456789abcdef", categorize=False)
        return (second % np.uint64(3)).astype(np.uint64), second

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(event_index, "id_hashes", weak)
        _replay(history)


def test_an_event_costs_40_bytes_and_runs_stay_few() -> None:
    index = EventIndex()
    for batch in range(200):
        ids = pa.array([f"{batch}-{i}" for i in range(500)], pa.string())
        index.add(ids, np.arange(500), np.full(500, batch), np.zeros(500, np.uint64))
    assert len(index) == 100_000
    assert index.nbytes == 40 * 100_000
    assert len(index._runs) <= 10, "runs merge as they grow"
    index.drop_before(150)
    assert len(index) == 25_000
    assert index.records(pa.array(["149-0", "150-0", "199-499"]))[0] == ABSENT
    assert index.records(pa.array(["150-7"]))[0] == 7


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["u1", "u2", "ü3", ""]), st.sampled_from(["v1", "v2", "v3"])), max_size=40
    ),
    st.integers(1, 3),
)
def test_a_viewer_hashes_as_its_values_do_however_the_rows_are_chunked(
    pairs: list[tuple[str, str]], chunks: int
) -> None:
    """Each distinct user and video is hashed once (`_hash_repeated`); the viewer's hash is what hashing
    every row's values gives, and the same for chunked and null-holding columns."""
    users, videos = [p[0] for p in pairs], [p[1] for p in pairs]
    key = event_index._KEYS[0]
    per_row = [pd.util.hash_array(np.array(values, dtype=object), hash_key=key) for values in (users, videos)]
    expected = pd.util.hash_array(per_row[0] * np.uint64(0x9E3779B97F4A7C15) ^ per_row[1], categorize=False)
    step = max(1, -(-len(pairs) // chunks))

    def chunked(values: list[str]) -> pa.ChunkedArray:
        return pa.chunked_array([values[i : i + step] for i in range(0, len(values), step)], pa.string())

    assert (event_index.viewer_hashes(chunked(users), chunked(videos)) == expected).all()
    assert (event_index.viewer_hashes(pa.array(users), pa.array(videos)) == expected).all()
    with_null = pa.array([*users, None], pa.string())
    nulls = event_index.viewer_hashes(with_null, pa.array([*videos, "v1"]))
    assert (nulls[:-1] == expected).all()
