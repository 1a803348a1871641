"""Benchmark 8: the driver's per-minute Gold work for one live micro-batch, as the event rate grows.

A live batch changes the `video_activity` and `events_by_type` rows of the minutes its events fall in
(and presence in the minute after). Until session 11 the driver recounted those windows from every
viewer's events of three minutes (`gold.window_rows` over `gold.context_span`): the work per 1-s batch
grew with the rate times three minutes. `gold.WindowCells` keeps each window's figures as sums over
viewers and adds only the batch's viewers' shares, after minus before.

The audience is simulated in-process (`AudienceSimulator`, seed 5) at each rate. The state is built from
three minutes of it (after the simulator's ten-minute ramp), then 1-s batches of event time are added to
it as the pipeline does (`RecentState.add`, which updates the cells); per batch the benchmark times the
recount (baseline) and the cells' part (their update inside `add`, and their rows), and checks that both
give the same rows. Each round builds the state afresh and times 20 batches; the figure is the round's
median batch. Nothing but this process runs: no Spark, no broker.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.harness import log
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.spread import compare
from pulse.jobs.recent import EVENT_COLUMNS, RecentState, first_per_event_id
from pulse.producer.simulator import AudienceConfig, AudienceSimulator
from pulse.transforms import gold
from pulse_core import catalogue

NAME = "driver_windows"
FULL: dict[str, Any] = {"rates": (2000, 8000), "rounds": 5, "batches": 20, "held_s": 180}
QUICK: dict[str, Any] = {"rates": (500,), "rounds": 2, "batches": 5, "held_s": 60}
RAMP_S = 600  # the simulator's audience grows to its rate over about ten minutes
SEED = 5
_TS = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GOLD_INPUT = ["event_id", "event_time", "event", "user_id", "video_id"]


def simulated(rate: int, seconds: int) -> pa.Table:
    """`seconds` of a simulated audience at `rate` events/s, after its ramp, as the state's columns."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    first, end = start + timedelta(seconds=RAMP_S), start + timedelta(seconds=RAMP_S + seconds)
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_COLUMNS}
    for offset, event in enumerate(
        AudienceSimulator(AudienceConfig(target_rate=rate), start, seed=SEED).events()
    ):
        moment = event.timestamp
        if moment >= end:
            break
        if moment < first:
            continue
        for name, value in zip(
            EVENT_COLUMNS,
            (event.event_id, moment, event.event, event.user_id, event.video_id, 0, offset),
            strict=True,
        ):
            columns[name].append(value)
    return pa.table(columns).cast(catalogue.SILVER_EVENTS.arrow_schema(EVENT_COLUMNS))


def _slice(events: pa.Table, low: datetime, high: datetime) -> pa.Table:
    times = events["event_time"]
    return events.filter(
        pc.and_(pc.greater_equal(times, pa.scalar(low, _TS)), pc.less(times, pa.scalar(high, _TS)))
    )


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return sorted(tuple(row.values()) for row in table.to_pylist())


def one_round(events: pa.Table, held_s: int, batches: int) -> dict[str, Any]:
    """Build the state from the first `held_s` seconds, then time `batches` 1-s batches both ways."""
    first = events["event_time"][0].as_py().replace(microsecond=0)
    split = first + timedelta(seconds=held_s)
    held = _slice(events, first, split)
    sessions = gold.sessions_table(gold.sessionize(gold.as_segments(gold.events_frame(held))))
    began = time.perf_counter()
    state = RecentState(timedelta(minutes=15), None, held, sessions)
    build_s = time.perf_counter() - began
    updates: list[float] = []
    add = state.cells.add

    def timed_add(*args: Any) -> None:
        began = time.perf_counter()
        add(*args)
        updates.append(time.perf_counter() - began)

    state.cells.add = timed_add  # type: ignore[method-assign,assignment]
    recount_s, cells_s, sizes, contexts = [], [], [], []
    for second in range(batches):
        low = split + timedelta(seconds=second)
        new = state.unseen(first_per_event_id(_slice(events, low, low + timedelta(seconds=1))))
        state.add(new)
        batch = gold.events_frame(new)
        began = time.perf_counter()
        rows = state.cells.rows(batch)
        cells_s.append(time.perf_counter() - began + updates[-1])
        began = time.perf_counter()
        low_us, high_us = gold.context_span(batch)
        context = state.events_since(
            _EPOCH + timedelta(microseconds=low_us), _EPOCH + timedelta(microseconds=high_us)
        )
        context = context.select(_GOLD_INPUT)
        recount = gold.window_rows(batch, gold.events_frame(context))
        recount_s.append(time.perf_counter() - began)
        for name, table in recount.items():
            if _rows(table) != _rows(rows[name]):
                raise AssertionError(f"{name}: the cells' rows differ from the recount's in batch {second}")
        sizes.append(len(batch))
        contexts.append(context.num_rows)
    return {
        "state_build_s": round(build_s, 3),
        "held_events": held.num_rows,
        "batch_events": statistics.median(sizes),
        "recount_context_events": statistics.median(contexts),
        "recount_ms": round(statistics.median(recount_s) * 1000, 1),
        "cells_ms": round(statistics.median(cells_s) * 1000, 1),
    }


def run(quick: bool) -> Result:
    """Per rate, rounds of the state built afresh and 1-s batches timed both ways; cells ÷ recount."""
    size = QUICK if quick else FULL
    per_rate: dict[int, list[dict[str, Any]]] = {}
    for rate in size["rates"]:
        log(f"driver_windows: simulating {size['held_s'] + size['batches']} s at {rate:,} events/s")
        events = simulated(rate, size["held_s"] + size["batches"] + 1)
        per_rate[rate] = []
        for round_no in range(size["rounds"]):
            measured = one_round(events, size["held_s"], size["batches"])
            log(f"  round {round_no + 1}/{size['rounds']}: {measured}")
            per_rate[rate].append(measured)
    verdicts = {
        rate: compare([r["recount_ms"] for r in rounds], [r["cells_ms"] for r in rounds], "lower")
        for rate, rounds in per_rate.items()
    }
    first = size["rates"][0]
    rows = [
        compared_rounds(f"{rate:,} events/s: window work per 1-s batch, cells ÷ recount", verdict, "ms")
        for rate, verdict in verdicts.items()
    ]
    rows += [
        {
            "label": f"{rate:,} events/s: batch / recount context / state held (events), state build (s)",
            "candidate": (
                f"{rounds[0]['batch_events']:,.0f} / {rounds[0]['recount_context_events']:,.0f} / "
                f"{rounds[0]['held_events']:,} events, "
                f"{statistics.median(r['state_build_s'] for r in rounds):.2f} s"
            ),
            "unit": "",
        }
        for rate, rounds in per_rate.items()
    ]
    return Result(
        name=NAME,
        quick=quick,
        parameters=size | {"seed": SEED, "ramp_s": RAMP_S, "rates": list(size["rates"])},
        metric=f"window work per 1-s live batch at {first:,} events/s, cells ÷ recount",
        unit="ms",
        better="lower",
        **headline(
            verdicts[first],
            {"label": "recount (every viewer's events of three minutes)", "rounds": per_rate[first]},
            {"label": "window cells (the batch's viewers' shares)", "rounds": per_rate[first]},
        ),
        target="report (the cells' rows are checked against the recount in every batch)",
        passed=None,
        rows=rows,
        details={"per_rate": {str(rate): rounds for rate, rounds in per_rate.items()}},
        notes=[
            "In-process, no Spark and no broker: the driver's share of a live batch only. The cells' time "
            "includes their update inside RecentState.add and building the batch's rows from them."
        ],
    )
