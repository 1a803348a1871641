"""Benchmark 8b: does Pulse scale out once the JVM is warm? `scaleout` over a topic four times as long,
with each run's second half measured apart.

`scaleout` (issue 22's figure) runs `pulse pipeline all --once` over 300,000 events: two batches, in a JVM
whose JIT compiler takes about half its CPU through them (docs/scale.md, session 19). On 2 cores the
compiler and the second task slot want the same core, so that ratio says little about a cluster, where an
executor compiles once and then runs for hours. Here each run reads 1.2M events, six batches of the
pipeline's default 200,000, and the figures of the run's second half are apart (`scaleout.second_half`):
from the commit of the batch that brings the run past half its events to the last commit. The figures,
per engine (`PULSE_BENCH_ENGINES`, default both):

- second-half events/s with `local[1]` and `local[2]`, alternated over the rounds, and the ratio of the
  medians at the quartiles; the whole run's ratio beside it;
- the second half's JIT compiler and task-thread CPU: how warm the JVM was, and the per-event work a
  cluster spreads.

It reports; it does not replace `scaleout`'s verdict. The 1.7x printed beside the ratio is the issue's
target, applied to a measure the issue did not name.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.harness import broker, log, workspace
from benchmarks.jvm_threads import JIT, KINDS, TASKS
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.scaleout import MASTERS, TARGET, engines, fill_topic, once
from benchmarks.spread import compare

NAME = "scaleout_warm"
TOPIC = "scaleout-warm"
# The pipeline's own batch size (200,000 a batch) over six batches; a quick run keeps six batches.
FULL = {"events": 1_200_000, "rounds": 3, "max_offsets_per_trigger": 0}  # 0: the pipeline's own
QUICK = {"events": 60_000, "rounds": 2, "max_offsets_per_trigger": 10_000}


def run(quick: bool) -> Result:
    """Fill the topic; then, round after round, each engine with local[1] and local[2] (A B A B …);
    compare the second halves' events/s at the quartiles."""
    size = QUICK if quick else FULL
    chosen = engines()
    limit = size["max_offsets_per_trigger"]
    extra = ("--max-offsets-per-trigger", str(limit)) if limit else ()
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {e: {m: [] for m in MASTERS} for e in chosen}
    with workspace(NAME) as ws, broker(ws):
        log(f"scaleout_warm: filling {TOPIC} with {size['events']:,} events")
        delivered = fill_topic(ws, TOPIC, size["events"], skewed=False)
        for round_no in range(size["rounds"]):
            for engine in chosen:
                for master in MASTERS:
                    tag = f"{engine}-{master[6:-1]}-{round_no}"
                    log(f"scaleout_warm round {round_no + 1}/{size['rounds']}: {engine}, {master}")
                    run_ = once(ws, TOPIC, master, engine, tag, extra)
                    if "second_half_events_per_s" not in run_:
                        raise RuntimeError(f"scaleout_warm ({tag}): the run had one batch; no second half")
                    run_["events_per_s"] = round(delivered / run_["seconds"])
                    for kind, seconds in run_["second_half_jvm_threads_s"].items():
                        run_[f"second_half_jvm_cpu_s {kind}"] = seconds
                    measured[engine][master].append(run_)
                    log(f"  {run_}")

    def figures(engine: str, master: str, key: str) -> list[float]:
        return [r[key] for r in measured[engine][master] if r.get(key) is not None]

    warm = {
        engine: compare(figures(engine, "local[1]", "second_half_events_per_s"),
                        figures(engine, "local[2]", "second_half_events_per_s"), "higher", TARGET)
        for engine in chosen
    }  # fmt: skip
    rows = [
        compared_rounds(
            f"{engine} engine, second half: local[2] ÷ local[1], events/s", warm[engine], "events/s"
        )
        for engine in chosen
    ]
    rows += [
        compared_rounds(
            f"{engine} engine, whole run: local[2] ÷ local[1], events/s",
            compare(figures(engine, "local[1]", "events_per_s"), figures(engine, "local[2]", "events_per_s"),
                    "higher", TARGET),
            "events/s",
        )
        for engine in chosen
    ]  # fmt: skip
    per_run = [
        ("second_half_events_per_s", "second-half events/s", "events/s"),
        *[(f"second_half_jvm_cpu_s {kind}", f"second half, Spark JVM CPU, {kind}", "s") for kind in KINDS],
        ("second_half_task_cpu_us_per_event", "second half, task threads' CPU an event", "µs"),
        ("machine_busy_cores", "machine's busy cores (whole run)", "cores"),
    ]
    rows += [
        {"label": f"{engine} engine, {master}: {label} (median)",
         "candidate": statistics.median(figures(engine, master, key)), "unit": unit}
        for key, label, unit in per_run
        for engine in chosen for master in MASTERS
        if figures(engine, master, key)
    ]  # fmt: skip
    headline_engine = chosen[-1]
    return Result(
        name=NAME,
        quick=quick,
        parameters=size
        | {
            "masters": list(MASTERS),
            "engines": list(chosen),
            "topic": "20 videos, even (scaleout's even topic, longer)",
            "order": "per round and engine: local[1], local[2]",
            "second half": "from the commit that brings the run past half its events to the last commit",
        },
        metric=f"second-half events/s with local[2] ÷ local[1] ({headline_engine} engine)",
        unit="events/s",
        better="higher",
        **headline(warm[headline_engine], {"label": "local[1]"}, {"label": "local[2]"}),
        target=f"report (issue 22's {TARGET} is scaleout's, over a fresh JVM's 300k events)",
        passed=None,
        rows=rows,
        details={"runs": measured},
        notes=[
            "Each run on a fresh lake and in a JVM of its own; the second half excludes the JVM's start and "
            "its busiest JIT compiling.",
            f"The second half's {JIT} and {TASKS} CPU say how warm the JVM was and what the work cost.",
        ],
    )
