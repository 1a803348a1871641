"""The results table printed at the end of a run (and pasted into docs/benchmarks.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.result import RESULTS, Result


def _figure(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value < 100:
        return f"{value:,.2f} {unit}".strip()
    if isinstance(value, int | float):
        return f"{value:,.0f} {unit}".strip()
    return f"{value} {unit}".strip()


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _verdict(passed: bool | None, error: str | None) -> str:
    if error:
        return "ERROR"
    return {True: "pass", False: "FAIL", None: "info"}[passed]


def rows_of(result: dict[str, Any]) -> list[list[str]]:
    """Table lines for one result record (the JSON form)."""
    if result.get("error"):
        return [
            [result["name"], "error", "—", "—", "—", "", "ERROR: " + result["error"].splitlines()[0][:80]]
        ]
    unit = result["unit"]
    lines = [
        [
            result["name"],
            result["metric"],
            f"{_figure(result['baseline'].get('value'), unit)} ({result['baseline'].get('label', '')})",
            f"{_figure(result['candidate'].get('value'), unit)} ({result['candidate'].get('label', '')})",
            _ratio(result["ratio"]),
            result["target"],
            _verdict(result["pass"], None),
        ]
    ]
    for extra in result.get("rows", []):
        extra_unit = extra.get("unit", unit)
        lines.append(
            [
                "",
                extra["label"],
                _figure(extra.get("baseline"), extra_unit) if "baseline" in extra else "",
                _figure(extra.get("candidate"), extra_unit),
                _ratio(extra.get("ratio")),
                extra.get("target", ""),
                _verdict(extra["pass"], None) if "pass" in extra else "",
            ]
        )
    return lines


def markdown(lines: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    header = [
        "benchmark",
        "metric",
        "baseline (absolute)",
        "candidate (absolute)",
        "ratio",
        "target",
        "result",
    ]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines]
    return "\n".join(out)


def table(results: Iterable[Result], machine: dict[str, Any]) -> str:
    """The table for this run's results."""
    lines: list[list[str]] = []
    for result in results:
        lines += rows_of(json.loads(result.to_json(machine)))
    cores, memory = machine["nproc"], machine["total_memory_gib"]
    head = f"\nPulse benchmarks on {cores} cores, {memory} GiB (ratio = candidate / baseline)\n"
    return head + markdown(lines)


def table_from_files(folder: Path = RESULTS) -> str:
    """The table for whatever `benchmarks/results/*.json` holds (`python -m benchmarks.report`)."""
    lines: list[list[str]] = []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        stamp = f" ({'quick' if record.get('quick') else 'full'}, {record.get('timestamp', '')})"
        first, *rest = rows_of(record)
        first[0] += stamp
        lines += [first, *rest]
    return markdown(lines)


if __name__ == "__main__":
    print(table_from_files())
