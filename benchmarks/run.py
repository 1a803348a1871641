"""`python -m benchmarks.run [--only NAME]... [--quick]`: run the benchmarks, write JSON, print a table."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

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
}
ALIASES = {"memory": "freshness"}


def main(argv: Sequence[str] | None = None) -> int:
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
    args = parser.parse_args(argv)
    wanted = {ALIASES.get(name, name) for name in args.only or BENCHMARKS}
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    results: list[Result] = []
    failed = False
    for name, module_name in BENCHMARKS.items():
        if name not in wanted:
            continue
        log(f"=== {name} ({'quick' if args.quick else 'full'}) ===")
        began = time.monotonic()
        module = importlib.import_module(module_name)
        try:
            produced = module.run(args.quick)
        except Exception as exc:  # one failing benchmark must not hide the others' results
            failed = True
            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}"
            produced = [failed_result(n, args.quick, error) for n in getattr(module, "NAMES", (module.NAME,))]
        for result in produced if isinstance(produced, list) else [produced]:
            result.wall_seconds = time.monotonic() - began
            (results_dir / f"{result.name}.json").write_text(result.to_json(machine))
            results.append(result)
        log(f"{name} done in {time.monotonic() - began:.0f} s")
    print(table(results, machine))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
