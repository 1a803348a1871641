"""`python -m benchmarks.run [--only NAME]... [--quick] [--allow-busy]`: run the benchmarks on a quiet
machine, write JSON, print a table."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from pathlib import Path

from benchmarks import conditions
from benchmarks.harness import log
from benchmarks.report import table
from benchmarks.result import RESULTS, Result, failed_result, machine_info

# Run order: the heavy pipeline run last, so a slow machine still gets the other results early.
BENCHMARKS = {
    "producer": "benchmarks.producer",
    "dashboard": "benchmarks.dashboard",
    "freshness": "benchmarks.freshness",  # also writes memory.json
    "pipeline": "benchmarks.pipeline",
    "sustained": "benchmarks.sustained",
    "floor": "benchmarks.floor",
    "scaleout": "benchmarks.scaleout",
    "scaleout_warm": "benchmarks.scaleout_warm",
    "driver_windows": "benchmarks.driver_windows",
    "keyed_state": "benchmarks.keyed_state",
    "dedupe_index": "benchmarks.dedupe_index",
    "sessions_merge": "benchmarks.sessions_merge",
    "jvm_profile": "benchmarks.jvm_profile",
}
ALIASES = {"memory": "freshness"}
REFUSED = 2  # the exit status when a busy machine stopped the run


def main(argv: Sequence[str] | None = None, probes: conditions.Probes | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=[*BENCHMARKS, *ALIASES],
        help="Run only this benchmark (repeatable). Default: all.",
    )
    parser.add_argument("--quick", action="store_true", help="Smoke-test sizes (about 1/20 of the full run).")
    parser.add_argument(
        "--results", default=str(RESULTS), help="Folder for <name>.json (default: benchmarks/results)."
    )
    parser.add_argument(
        "--allow-busy",
        action="store_true",
        help="Run even when the machine is busy; such results are marked busy and never say met.",
    )
    args = parser.parse_args(argv)
    wanted = {ALIASES.get(name, name) for name in args.only or BENCHMARKS}
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    probes = probes or conditions.Probes()
    # Every process this run starts inherits the id, so the conditions can tell them from other work.
    os.environ.setdefault(conditions.RUN_ENV, uuid.uuid4().hex)
    machine = machine_info()
    results: list[Result] = []
    status = 0
    for index, (name, module_name) in enumerate((n, m) for n, m in BENCHMARKS.items() if n in wanted):
        start = conditions.settle(probes, first=index == 0, say=log)
        if start.busy and not args.allow_busy:
            log(
                f"refused to start {name}: the machine is busy: {start.busy}. Nothing more is measured. "
                "Run it on a quiet machine, or pass --allow-busy (make bench BENCH_ARGS=--allow-busy): "
                "its results are then marked busy and never say met."
            )
            status = REFUSED
            break
        if start.busy:
            log(f"{name}: the machine is busy ({start.busy}); --allow-busy: the result is marked busy")
        log(f"=== {name} ({'quick' if args.quick else 'full'}) ===")
        began = time.monotonic()
        module = importlib.import_module(module_name)
        watch = conditions.Watch(probes).start()
        try:
            produced = module.run(args.quick)
        except Exception as exc:  # one failing benchmark must not hide the others' results
            status = 1
            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}"
            produced = [failed_result(n, args.quick, error) for n in getattr(module, "NAMES", (module.NAME,))]
        finally:
            during = watch.stop()
        measured = conditions.record(start, during, args.allow_busy)
        for result in produced if isinstance(produced, list) else [produced]:
            result.wall_seconds = time.monotonic() - began
            result.conditions = measured
            (results_dir / f"{result.name}.json").write_text(result.to_json(machine))
            results.append(result)
        log(f"{name} done in {time.monotonic() - began:.0f} s" + (" (busy)" if measured["busy"] else ""))
    if results:
        print(table(results, machine))
    return status


if __name__ == "__main__":
    sys.exit(main())
