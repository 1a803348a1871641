"""Benchmark 13: a live batch's `gold.user_sessions` commit at a large audience (`io.merge_with_delta_rs`).

Each heartbeat moves its session's end, so a live batch changes one session row per viewer who sent an
event, and those rows are spread over every open session's start. The commit replaces its prune range
(sessions that ended within the session gap of the batch's first event): every open session, each batch.
So what the commit costs grows with the audience, not with the event rate, and docs/scale.md had sized
the driver for 1M viewers from pipelines of a few thousand.

Per audience (open sessions) and round, a child process:
- writes a `user_sessions` table of that many open sessions with delta-rs (their ends within the last
  30 s, their starts over the last 2 hours, sorted by end, as the pipeline's commits leave them);
- commits `batches` one-second batches through `io.merge_with_delta_rs`, as the pipeline does (prune:
  `session_end` from 300 s before the batch; with the record of what the last MERGE left in the range,
  where the code under test keeps one). Each batch is a heartbeat from 1/30 of the viewers
  (one every 30 s a viewer: 1M viewers give 33,333 changed sessions a second, the issue's 35k events/s);
- times each commit (wall, and the process's CPU, delta-rs's Rust threads included); the first is a
  warm-up and not counted;
- reads the table back and checks it against the sessions it should hold, row for row.

Before and after in one run: each round runs this checkout's `pulse.io` and the baseline commit's
(`PULSE_BENCH_BASELINE_REF`), each in a child of its own, alternately (A B A B). No Spark, no broker.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks.harness import REPO, baseline_ref, baseline_tree, log, pulse_cli, run_json_child
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.spread import compare

NAME = "sessions_merge"
FULL: dict[str, Any] = {"audiences": (10_000, 100_000, 1_000_000), "rounds": 3, "batches": 8}
QUICK: dict[str, Any] = {"audiences": (10_000, 50_000), "rounds": 2, "batches": 3}
HEARTBEAT_S = 30  # a viewer's heartbeat interval: 1/30 of the open sessions change each second
HISTORY_S = 2 * 3600  # how long ago the open sessions started
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
_TS = pa.timestamp("us", tz="UTC")


def _sessions(count: int, rng: np.random.Generator) -> pa.Table:
    """`count` open sessions, sorted by their end, as `gold.user_sessions` rows."""
    from pulse_core.catalogue import GOLD_USER_SESSIONS

    now_us = int(NOW.timestamp() * 1_000_000)
    ends = np.sort(now_us - rng.integers(0, HEARTBEAT_S, count) * 1_000_000)
    starts = ends - rng.integers(0, HISTORY_S, count) * 1_000_000
    return pa.table(
        {
            "user_id": pa.array([f"user_{i:07d}" for i in rng.permutation(count)]),
            "video_id": pa.array([f"video_{i % 50}" for i in range(count)]),
            "session_start": pa.array(starts, _TS),
            "session_end": pa.array(ends, _TS),
            "duration_seconds": (ends - starts) / 1e6,
            "event_count": rng.integers(1, 500, count),
            "message_count": rng.integers(0, 50, count),
            "ended_by_leave": np.zeros(count, dtype=bool),
        },
        schema=GOLD_USER_SESSIONS.arrow_schema(),
    )


def _heartbeats(sessions: pa.Table, picked: np.ndarray, at_us: int) -> pa.Table:
    """The picked sessions after one more heartbeat each, at `at_us`."""
    rows = sessions.take(pa.array(picked))
    ends = np.full(len(picked), at_us, dtype=np.int64)
    starts = rows["session_start"].cast(pa.int64()).to_numpy()
    updated = {
        "session_end": pa.array(ends, _TS),
        "duration_seconds": pa.array((ends - starts) / 1e6),
        "event_count": pa.array(rows["event_count"].to_numpy() + 1),
    }
    for name, column in updated.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name, column)
    return rows


def _cpu_s() -> float:
    """This process's CPU seconds so far, every thread counted."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def measure(audience: int, batches: int, seed: int) -> dict[str, Any]:
    """One child's run: build the table, commit `batches` heartbeat batches, check the table; the
    figures of every batch after the first."""
    from deltalake import DeltaTable, write_deltalake

    from pulse import io
    from pulse_core.catalogue import GOLD_USER_SESSIONS

    rng = np.random.default_rng(seed)
    expected = _sessions(audience, rng)
    changed_per_batch = max(audience // HEARTBEAT_S, 1)
    with tempfile.TemporaryDirectory(prefix="pulse-sessions-merge-") as folder:
        path = os.path.join(folder, "user_sessions")
        DeltaTable.create(
            path, GOLD_USER_SESSIONS.arrow_schema(), configuration=GOLD_USER_SESSIONS.properties
        )
        write_deltalake(path, expected, mode="append")
        at_us = int(NOW.timestamp() * 1_000_000)
        wall, cpu = [], []
        # As the pipeline calls it: with the record of what the last MERGE left in the range, where the
        # code under test keeps one (since session 23).
        memo: dict[str, Any] = {}
        if "written" in inspect.signature(io.merge_with_delta_rs).parameters:
            memo["written"] = {}
        for batch in range(batches):
            at_us += 1_000_000
            picked = np.sort(rng.choice(audience, changed_per_batch, replace=False))
            rows = _heartbeats(expected, picked, at_us)
            first = datetime.fromtimestamp(at_us / 1e6, UTC) - timedelta(seconds=1)
            prune = io.TimeRange("session_end", first - timedelta(seconds=300))
            began_wall, began_cpu = time.perf_counter(), _cpu_s()
            io.merge_with_delta_rs(path, rows, GOLD_USER_SESSIONS.keys, prune, f"batch-{batch}", **memo)
            wall.append(time.perf_counter() - began_wall)
            cpu.append(_cpu_s() - began_cpu)
            keep = np.ones(audience, dtype=bool)
            keep[picked] = False
            expected = pa.concat_tables([expected.filter(pa.array(keep)), rows])
        written = DeltaTable(path).to_pyarrow_table().select(expected.column_names).cast(expected.schema)
        written = written.sort_by("user_id")
        if not written.equals(expected.sort_by("user_id")):
            raise AssertionError(
                f"user_sessions after {batches} MERGEs holds {written.num_rows:,} rows that differ from the "
                f"{expected.num_rows:,} expected"
            )
    return {
        "open_sessions": audience,
        "changed_per_batch": changed_per_batch,
        "batches_timed": batches - 1,
        "merge_s": round(statistics.median(wall[1:]), 4),
        "merge_cpu_s": round(statistics.median(cpu[1:]), 4),
        "first_merge_s": round(wall[0], 4),
        "checked_rows": expected.num_rows,
    }


def _child(code: str, audience: int, batches: int, seed: int, pythonpath: str | None) -> dict[str, Any]:
    """`measure` in a child of its own, importing `pulse` from `pythonpath` (a baseline checkout) if given."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    args = ["--child", "--audience", str(audience), "--batches", str(batches), "--seed", str(seed)]
    measured = run_json_child("benchmarks.sessions_merge", args, env, timeout=1800)
    log(
        f"sessions_merge {code}, {audience:,} open sessions: {measured['merge_s']:.3f} s a batch "
        f"({measured['merge_cpu_s']:.3f} s CPU), {measured['changed_per_batch']:,} changed, checked"
    )
    return measured


def run(quick: bool) -> Result:
    """Per audience and round, this checkout's commit and the baseline's in children, alternately; a
    batch's seconds, after ÷ before, and the seconds per 1,000 open sessions."""
    size = QUICK if quick else FULL
    ref = baseline_ref()
    before_path = pulse_cli(baseline_tree(ref))[1] if ref else None
    after_path = pulse_cli(REPO)[1]
    after: dict[int, list[dict[str, Any]]] = {}
    before: dict[int, list[dict[str, Any]]] = {}
    for round_no in range(size["rounds"]):
        for audience in size["audiences"]:
            seed = round_no * 7919 + audience
            after.setdefault(audience, []).append(
                _child("after", audience, size["batches"], seed, after_path)
            )
            if before_path:
                before.setdefault(audience, []).append(
                    _child(f"before ({ref})", audience, size["batches"], seed, before_path)
                )

    def seconds(runs: list[dict[str, Any]], name: str = "merge_s") -> list[float]:
        return [r[name] for r in runs]

    rows = []
    comparisons = {}
    for audience in size["audiences"]:
        base = seconds(before[audience]) if before else seconds(after[audience])
        comparisons[audience] = compare(base, seconds(after[audience]), "lower")
        label = f"{audience:,} open sessions, {max(audience // HEARTBEAT_S, 1):,} changed: a batch's commit"
        rows.append(
            compared_rounds(label + (", after ÷ before" if before else ""), comparisons[audience], "s")
        )
        cpu_base = (
            seconds(before[audience], "merge_cpu_s") if before else seconds(after[audience], "merge_cpu_s")
        )
        rows.append(
            compared_rounds(
                f"{audience:,} open sessions: CPU of a batch's commit",
                compare(cpu_base, seconds(after[audience], "merge_cpu_s"), "lower"),
                "s",
            )
        )
    largest = size["audiences"][-1]
    per_thousand = {
        str(audience): round(statistics.median(seconds(runs)) / audience * 1000 * 1000, 3)
        for audience, runs in after.items()
    }
    return Result(
        name=NAME,
        quick=quick,
        parameters=size | {"audiences": list(size["audiences"]), "heartbeat_s": HEARTBEAT_S, "baseline": ref},
        metric=f"a live batch's gold.user_sessions commit at {largest:,} open sessions (delta-rs)",
        unit="s",
        better="lower",
        **headline(
            comparisons[largest],
            {
                "label": f"baseline {ref}" if ref else "this checkout (no baseline)",
                "rounds": before.get(largest, after[largest]),
            },
            {"label": "this checkout", "rounds": after[largest]},
        ),
        target="report (every run's table is checked row for row)",
        passed=None,
        rows=rows,
        details={
            "after": {str(a): runs for a, runs in after.items()},
            "before": {str(a): runs for a, runs in before.items()},
            "after_ms_per_1000_open_sessions": per_thousand,
        },
        notes=[
            "Children of their own, no Spark and no broker. The first commit of each child is a warm-up and "
            "not counted; the figure is a child's median batch, and the spread is over rounds.",
            "The prune range holds every open session: the commit rewrites all of them each batch, so its "
            "cost follows the audience, not the event rate (docs/scale.md).",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sessions_merge", description=__doc__)
    parser.add_argument("--child", action="store_true", help="Measure in this process and print JSON.")
    parser.add_argument("--audience", type=int, default=100_000, help="Open sessions.")
    parser.add_argument("--batches", type=int, default=8, help="Heartbeat batches (the first is a warm-up).")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.child:
        parser.error("run it through `python -m benchmarks.run --only sessions_merge`, or pass --child")
    print(json.dumps(measure(args.audience, args.batches, args.seed)))


if __name__ == "__main__":
    main()
