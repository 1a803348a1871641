"""Benchmark 11: the driver's dedupe index (`pulse.jobs.event_index`) against the dict it replaced.

The recent state holds the ids of 15 minutes of events (`PULSE_RECENT_MINUTES`) to deduplicate Silver.
Until session 15 that was a dict from each id's string to its Kafka record: about 154 B an event, the
larger part of the state's 250 B (issue 22). `EventIndex` keeps a 128-bit hash of the id, the record and
the event time and a hash of the viewer in numpy arrays.

Per rate and round: the ids of 15 minutes of events (uuid4 strings, as the producer sends), added a
second at a time as the pipeline adds its batches; then one second's batch looked up (1% of it ids the
state holds, the resends a producer makes). The memory is what tracemalloc counts for each structure,
built alone; the lookup is the median of 20. Both answer the same batch, and the benchmark checks that
their answers agree. In-process: no Spark, no broker.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
import uuid
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks.harness import log
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.spread import compare
from pulse.jobs.event_index import ABSENT, EventIndex

NAME = "dedupe_index"
FULL: dict[str, Any] = {"rates": (2000, 8000), "rounds": 3, "held_s": 900, "lookups": 20}
QUICK: dict[str, Any] = {"rates": (200,), "rounds": 2, "held_s": 120, "lookups": 5}
RESENT = 0.01


def _ids(count: int, seed: int) -> pa.Array:
    rng = np.random.default_rng(seed)
    return pa.array(
        [str(uuid.UUID(int=int(v), version=4)) for v in rng.integers(0, 2**63, count)], pa.string()
    )


def _dict(ids: pa.Array, records: np.ndarray) -> dict[str, int]:
    """The structure before session 15 (`RecentState._coordinates`), built as it was: a batch at a time."""
    held: dict[str, int] = {}
    return held | dict(zip(ids.to_pylist(), records.tolist(), strict=True))


def _measured(build: Any) -> tuple[Any, int, float]:
    """(what `build` returned, the bytes it holds by tracemalloc, seconds to build)."""
    gc.collect()
    tracemalloc.start()
    began = time.perf_counter()
    built = build()
    seconds = time.perf_counter() - began
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return built, held, seconds


def one_round(rate: int, held_s: int, lookups: int, seed: int) -> dict[str, Any]:
    count = rate * held_s
    ids = _ids(count, seed)
    records = np.arange(count, dtype=np.int64)
    times = records // rate * 1_000_000
    viewers = records.astype(np.uint64) % np.uint64(max(rate, 1))

    def index_by_second() -> EventIndex:
        index = EventIndex()
        for second in range(held_s):
            at = slice(second * rate, (second + 1) * rate)
            index.add(ids[at], records[at], times[at], viewers[at])
        return index

    index, index_bytes, index_build_s = _measured(index_by_second)
    held, dict_bytes, dict_build_s = _measured(lambda: _dict(ids, records))
    resent = int(rate * RESENT)
    batch = pa.concat_arrays([_ids(rate - resent, seed + 1), ids[count // 2 : count // 2 + resent]])
    dict_s, index_s = [], []
    for _ in range(lookups):
        began = time.perf_counter()
        by_dict = list(map(held.get, batch.to_pylist()))
        dict_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        by_index = index.records(batch)
        index_s.append(time.perf_counter() - began)
    if [ABSENT if r is None else r for r in by_dict] != by_index.tolist():
        raise AssertionError("the index and the dict answer the batch differently")
    return {
        "held_events": count,
        "dict_bytes_per_event": round(dict_bytes / count, 1),
        "index_bytes_per_event": round(index_bytes / count, 1),
        "dict_build_s": round(dict_build_s, 2),
        "index_build_s": round(index_build_s, 2),
        "dict_lookup_ms": round(statistics.median(dict_s) * 1000, 2),
        "index_lookup_ms": round(statistics.median(index_s) * 1000, 2),
    }


def run(quick: bool) -> Result:
    """Per rate, rounds of both structures built afresh; memory per event and lookup time, index ÷ dict."""
    size = QUICK if quick else FULL
    per_rate: dict[int, list[dict[str, Any]]] = {}
    for rate in size["rates"]:
        per_rate[rate] = []
        for round_no in range(size["rounds"]):
            measured = one_round(rate, size["held_s"], size["lookups"], seed=round_no)
            log(f"dedupe_index {rate:,} events/s, round {round_no + 1}/{size['rounds']}: {measured}")
            per_rate[rate].append(measured)

    def side(rate: int, name: str) -> list[float]:
        return [r[name] for r in per_rate[rate]]

    memory = {
        rate: compare(side(rate, "dict_bytes_per_event"), side(rate, "index_bytes_per_event"), "lower")
        for rate in per_rate
    }
    lookup = {
        rate: compare(side(rate, "dict_lookup_ms"), side(rate, "index_lookup_ms"), "lower")
        for rate in per_rate
    }
    rows = []
    for rate in per_rate:
        rows.append(
            compared_rounds(f"{rate:,} events/s held 15 min: bytes an event, index ÷ dict", memory[rate], "B")
        )
        rows.append(
            compared_rounds(f"{rate:,} events/s: lookup of a 1-s batch, index ÷ dict", lookup[rate], "ms")
        )
    first = size["rates"][0]
    return Result(
        name=NAME,
        quick=quick,
        parameters=size | {"rates": list(size["rates"]), "resent": RESENT},
        metric=f"dedupe index memory per held event at {first:,} events/s, index ÷ dict",
        unit="B",
        better="lower",
        **headline(
            memory[first],
            {"label": "dict of id strings (before session 15)", "rounds": per_rate[first]},
            {"label": "EventIndex (128-bit hashes in numpy)", "rounds": per_rate[first]},
        ),
        target="report (both answer every lookup alike, checked each round)",
        passed=None,
        rows=rows,
        details={"per_rate": {str(rate): rounds for rate, rounds in per_rate.items()}},
        notes=[
            "In-process, no Spark and no broker. tracemalloc counts the dict's strings, ints and table, and "
            "the index's arrays; each built alone from the same ids."
        ],
    )
