"""Benchmark 2: events/s through bronze → silver → gold (`pulse pipeline all --once`) against a plain copy.

The topic is filled once by `pulse produce --rate 0`. The ceiling is a plain Spark Kafka → Delta copy
of the same topic (benchmarks/spark_copy.py, same `get_spark` session settings), run in the same run
right before the medallion. Phase times are the caught-up records of the pipeline's progress log (the
baseline's "caught up in" lines), which exclude the Spark session start; the session start is reported
separately for both.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from benchmarks.harness import (
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
from benchmarks.result import Result, ratio
from pulse.progress_log import read_progress_log

NAME = "pipeline"
FULL = {"events": 1_000_000, "verify_gold": False}
QUICK = {"events": 50_000, "verify_gold": True}
SEED = 21


def run(quick: bool) -> Result:
    """Fill the topic, copy it with plain Spark, then run the medallion once, and compare events/s."""
    size = QUICK if quick else FULL
    events = size["events"]
    details: dict[str, Any] = {}
    with workspace(NAME) as ws, broker(ws):
        log(f"pipeline: producing {events:,} events")
        produced = produce_as_fast_as_possible(ws, events, SEED, timeout=1800)
        details["produce"] = {k: produced[k] for k in ("sent", "delivered", "failed", "elapsed_s")}

        log("pipeline: ceiling — plain Spark Kafka → Delta copy (availableNow)")
        began = time.monotonic()
        ceiling = run_json_child(
            "benchmarks.spark_copy",
            ["--target", str(ws.home / "ceiling" / "copy"), "--checkpoint", str(ws.home / "ceiling" / "_cp")],
            ws.env(),
            timeout=3600,
        )
        ceiling["process_s"] = round(time.monotonic() - began, 1)
        log(f"  ceiling: {ceiling['rows']:,} rows in {ceiling['copy_s']:.1f} s")

        log("pipeline: medallion — pulse pipeline all --once")
        began = time.monotonic()
        progress_log = ws.home / "progress.jsonl"
        done = checked(
            pulse(ws, "pipeline", "all", "--once", "--progress-log", str(progress_log), timeout=7200),
            "pulse pipeline all --once",
        )
        process_s = time.monotonic() - began
        output = done.stdout + done.stderr
        (ws.home / "pipeline.log").write_text(output)
        records = read_progress_log(progress_log)
        phases = caught_up(records)
        if set(phases) != {"all"}:
            raise RuntimeError(f"no caught-up record in the progress log:\n{output[-3000:]}")
        total_s = sum(phases.values())
        log(f"  medallion: {phases} (total {total_s:.1f} s, process {process_s:.1f} s)")
        details["medallion_batches"] = batch_stats(records)
        details["medallion_process_s"] = round(process_s, 1)
        baseline = baseline_ref()
        if baseline:
            log(f"pipeline: baseline — the medallion of {baseline}, same topic, own lake")
            code = baseline_tree(baseline)
            cli, pythonpath = pulse_cli(code)
            env = ws.env(PULSE_LAKE=str(ws.home / "baseline-lake"), PYTHONPATH=pythonpath)
            old = subprocess.run(
                [*cli, "pipeline", "all", "--once"],
                cwd=code, env=env, capture_output=True, text=True, timeout=7200, check=False,
            )  # fmt: skip
            old_output = old.stdout + old.stderr
            (ws.home / "baseline.log").write_text(old_output)
            old_records = baseline_records(old_output)
            old_phases = caught_up(old_records)
            if old.returncode != 0 or "all" not in old_phases:
                raise RuntimeError(f"the baseline pipeline failed:\n{old_output[-3000:]}")
            details["baseline"] = {
                "ref": baseline,
                "all_s": old_phases["all"],
                "batches": batch_stats(old_records),
            }
            log(f"  baseline: all caught up in {old_phases['all']:.1f} s")
        if size["verify_gold"]:
            log("pipeline: verifying Gold against the reference")
            check = run_json_child("benchmarks.gold_check", [], ws.env(), timeout=1800)
            details["gold_check"] = check
            log(f"  gold check: {check}")

    ceiling_eps = ceiling["rows"] / ceiling["copy_s"]
    medallion_eps = events / total_s
    ratio_value = ratio(medallion_eps, ceiling_eps)
    rows = [
        {
            "label": f"{stage} phase",
            "candidate": round(events / seconds),
            "unit": "events/s",
            "ratio": ratio(events / seconds, ceiling_eps),
        }
        for stage, seconds in phases.items()
    ]
    rows.append(
        {
            "label": "medallion total time",
            "baseline": ceiling["copy_s"],
            "candidate": round(total_s, 1),
            "unit": "s",
            "ratio": ratio(total_s, ceiling["copy_s"]),
        }
    )
    if "baseline" in details:
        old_eps = events / details["baseline"]["all_s"]
        rows.append(
            {
                "label": f"before: the medallion of {details['baseline']['ref']}, same run",
                "baseline": round(ceiling_eps),
                "candidate": round(old_eps),
                "unit": "events/s",
                "ratio": ratio(old_eps, ceiling_eps),
            }
        )
        rows.append(
            {
                "label": "after ÷ before, events/s",
                "baseline": round(old_eps),
                "candidate": round(medallion_eps),
                "unit": "events/s",
                "ratio": ratio(medallion_eps, old_eps),
            }
        )
    notes = [
        "Phase times come from the pipeline's own caught-up record (the baseline's 'caught up in' line) and "
        "exclude the Spark session start (the ceiling's copy_s excludes it too).",
    ]
    passed = ratio_value is not None and ratio_value >= 0.5
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
        passed = passed and exact
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
        },
        metric="events/s",
        unit="events/s",
        better="higher",
        baseline={"label": "plain Spark Kafka→Delta copy", "value": round(ceiling_eps), **ceiling},
        candidate={
            "label": "bronze→silver→gold",
            "value": round(medallion_eps),
            "phases_s": phases,
            "total_s": round(total_s, 2),
        },
        ratio=ratio_value,
        target=">= 0.5x of the ceiling",
        passed=passed,
        details=details,
        notes=notes,
        rows=rows,
    )
