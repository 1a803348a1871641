"""Benchmark 2: events/s through bronze → silver → gold (`pulse pipeline all --once`) against a plain copy.

The topic is filled once by `pulse produce --rate 0`. The ceiling is a plain Spark Kafka → Delta copy
of the same topic (benchmarks/spark_copy.py, same `get_spark` session settings). Each round runs the copy,
then the medallion, then the baseline commit's medallion, each over a fresh table (A B C A B C …); the
target holds at the quartiles of the rounds (benchmarks.spread). Phase times are the caught-up records of
the pipeline's progress log (the baseline's "caught up in" lines), which exclude the Spark session start;
the session start is reported separately for both.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Workspace,
    baseline_ref,
    baseline_tree,
    broker,
    checked,
    log,
    produce_as_fast_as_possible,
    pulse,
    pulse_cli,
    run_json_child,
    workspace,
)
from benchmarks.pipeline_progress import baseline_records, batch_stats, caught_up
from benchmarks.result import Result, compared_rounds, headline
from benchmarks.spread import Target, compare
from pulse.progress_log import read_progress_log

NAME = "pipeline"
FULL = {"events": 1_000_000, "rounds": 5, "verify_gold": False}
# Two rounds: a smoke run, which gives no verdict on the ratio (benchmarks.spread.MIN_ROUNDS), only Gold's.
QUICK = {"events": 50_000, "rounds": 2, "verify_gold": True}
SEED = 21
TARGET = Target(0.5, "higher")


def _ceiling(ws: Workspace, round_no: int) -> dict[str, Any]:
    """The plain Spark Kafka → Delta copy of the topic into a fresh table (the session start apart)."""
    target = ws.home / f"ceiling-{round_no}"
    began = time.monotonic()
    ceiling = run_json_child(
        "benchmarks.spark_copy",
        ["--target", str(target / "copy"), "--checkpoint", str(target / "_cp")],
        ws.env(),
        timeout=3600,
    )
    ceiling["process_s"] = round(time.monotonic() - began, 1)
    ceiling["events_per_s"] = ceiling["rows"] / ceiling["copy_s"]
    shutil.rmtree(target, ignore_errors=True)
    log(f"  ceiling: {ceiling['rows']:,} rows in {ceiling['copy_s']:.1f} s")
    return ceiling


def _lake(ws: Workspace, round_no: int) -> Path:
    return ws.home / f"lake-{round_no}"


def _medallion(ws: Workspace, events: int, round_no: int) -> dict[str, Any]:
    """`pulse pipeline all --once` of this checkout over a fresh lake (round 0's is the one Gold is checked
    in); the time to "caught up" from its progress log."""
    lake = _lake(ws, round_no)
    progress_log = ws.home / f"progress-{round_no}.jsonl"
    began = time.monotonic()
    done = checked(
        pulse(ws, "pipeline", "all", "--once", "--progress-log", str(progress_log), timeout=7200,
              PULSE_LAKE=str(lake)),
        "pulse pipeline all --once",
    )  # fmt: skip
    process_s = time.monotonic() - began
    output = done.stdout + done.stderr
    (ws.home / f"pipeline-{round_no}.log").write_text(output)
    records = read_progress_log(progress_log)
    phases = caught_up(records)
    if set(phases) != {"all"}:
        raise RuntimeError(f"no caught-up record in the progress log:\n{output[-3000:]}")
    if round_no:
        shutil.rmtree(lake, ignore_errors=True)
    log(f"  medallion: all caught up in {phases['all']:.1f} s (process {process_s:.1f} s)")
    return {
        "all_s": phases["all"],
        "events_per_s": events / phases["all"],
        "process_s": round(process_s, 1),
        "batches": batch_stats(records),
    }


def _before(ws: Workspace, ref: str, events: int, round_no: int) -> dict[str, Any]:
    """The medallion of the baseline commit `ref`, same topic, a fresh lake of its own."""
    code = baseline_tree(ref)
    cli, pythonpath = pulse_cli(code)
    lake = ws.home / f"baseline-lake-{round_no}"
    env = ws.env(PULSE_LAKE=str(lake), PYTHONPATH=pythonpath)
    old = subprocess.run(
        [*cli, "pipeline", "all", "--once"],
        cwd=code, env=env, capture_output=True, text=True, timeout=7200, check=False,
    )  # fmt: skip
    output = old.stdout + old.stderr
    (ws.home / f"baseline-{round_no}.log").write_text(output)
    records = baseline_records(output)
    phases = caught_up(records)
    if old.returncode != 0 or "all" not in phases:
        raise RuntimeError(f"the baseline pipeline failed:\n{output[-3000:]}")
    shutil.rmtree(lake, ignore_errors=True)
    log(f"  baseline: all caught up in {phases['all']:.1f} s")
    return {"all_s": phases["all"], "events_per_s": events / phases["all"], "batches": batch_stats(records)}


def run(quick: bool) -> Result:
    """Fill the topic once; then, round after round, the plain copy, the medallion and the baseline commit's
    medallion (A B C A B C …), each over a fresh table; compare events/s at the quartiles."""
    size = QUICK if quick else FULL
    events = size["events"]
    details: dict[str, Any] = {}
    ceilings: list[dict[str, Any]] = []
    medallions: list[dict[str, Any]] = []
    befores: list[dict[str, Any]] = []
    baseline = baseline_ref()
    with workspace(NAME) as ws, broker(ws):
        log(f"pipeline: producing {events:,} events")
        produced = produce_as_fast_as_possible(ws, events, SEED, timeout=1800)
        details["produce"] = {k: produced[k] for k in ("sent", "delivered", "failed", "elapsed_s")}
        for round_no in range(size["rounds"]):
            log(f"pipeline round {round_no + 1}/{size['rounds']}: the plain Spark Kafka → Delta copy")
            ceilings.append(_ceiling(ws, round_no))
            log("pipeline: the medallion, pulse pipeline all --once")
            medallions.append(_medallion(ws, events, round_no))
            if baseline:
                log(f"pipeline: the medallion of {baseline}, same topic, own lake")
                befores.append(_before(ws, baseline, events, round_no))
        if size["verify_gold"]:
            log("pipeline: verifying round 1's Gold against the reference")
            lake = str(_lake(ws, 0))
            check = run_json_child("benchmarks.gold_check", [], ws.env(PULSE_LAKE=lake), timeout=1800)
            details["gold_check"] = check
            log(f"  gold check: {check}")

    def per_s(runs: list[dict[str, Any]]) -> list[float]:
        return [r["events_per_s"] for r in runs]

    verdict = compare(per_s(ceilings), per_s(medallions), "higher", TARGET)
    times = compare([c["copy_s"] for c in ceilings], [m["all_s"] for m in medallions], "lower")
    rows = [compared_rounds("medallion time ÷ the copy's", times, "s")]
    if befores:
        details["baseline"] = {"ref": baseline, "rounds": befores}
        rows.append(
            compared_rounds(
                f"before: the medallion of {baseline} ÷ the copy, events/s",
                compare(per_s(ceilings), per_s(befores), "higher"),
                "events/s",
            )
        )
        rows.append(
            compared_rounds(
                f"after ÷ before ({baseline}), events/s",
                compare(per_s(befores), per_s(medallions), "higher"),
                "events/s",
            )
        )
    notes = [
        "Phase times come from the pipeline's own caught-up record (the baseline's 'caught up in' line) and "
        "exclude the Spark session start (the ceiling's copy_s excludes it too).",
        "Each round runs the copy, the medallion and the baseline's medallion one after the other, each over "
        "a fresh table or lake; the target holds at the quartiles of the rounds.",
    ]
    passed = verdict["met"]
    if size["verify_gold"]:
        check = details["gold_check"]
        diffs = sum(t["differences"] for t in check["tables"].values())
        exact = diffs == 0 and check["silver_rows"] == produced["valid"]
        rows.append(
            {
                "label": "Gold = reference (quick size only)",
                "candidate": "exact" if exact else f"{diffs} diffs",
                "unit": "",
                "pass": exact,
            }
        )
        passed = False if not exact else passed
    else:
        notes.append(
            "Gold is not verified against the reference at the full size (the Python oracle is slow on "
            "1M events); the quick run verifies it."
        )
    return Result(
        name=NAME,
        quick=quick,
        parameters={
            **size,
            "seed": SEED,
            "partitions": 3,
            "mode": "--once (availableNow), one Spark session",
            "order": "per round: copy, medallion, baseline medallion",
        },
        metric="events/s",
        unit="events/s",
        better="higher",
        **headline(
            verdict,
            {"label": "plain Spark Kafka→Delta copy", "rounds": ceilings},
            {"label": "bronze→silver→gold", "rounds": medallions},
        ),
        target=f"{TARGET} of the ceiling, at the quartiles",
        passed=passed,
        details=details,
        notes=notes,
        rows=rows,
    )
