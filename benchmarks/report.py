"""The results table printed at the end of a run (and pasted into docs/benchmarks.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.result import RESULTS, Result


def _number(value: Any) -> str:
    if isinstance(value, float) and value < 100:
        return f"{value:,.2f}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return f"{value}"


def _figure(value: Any, unit: str, spread: dict[str, Any] | None = None) -> str:
    """`52,159 events/s`, with `[IQR q1-q3, n rounds]` when the figure is a median over rounds."""
    if value is None:
        return "—"
    text = f"{_number(value)} {unit}".strip()
    if spread and spread.get("rounds", 0) > 1 and spread.get("q1") is not None:
        text += f" [IQR {_number(spread['q1'])}-{_number(spread['q3'])}, {spread['rounds']} rounds]"
    return text


def _ratio(value: float | None, at_quartiles: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}x" + ("" if at_quartiles is None else f" (at the quartiles {at_quartiles:.2f}x)")


def _verdict(passed: bool | None, error: str | None, busy: bool = False, checked: bool = True) -> str:
    """met / NOT MET / info; a busy result has no verdict, one from before the conditions were recorded
    (issue 26) says it is unchecked."""
    if error:
        return "ERROR"
    if busy:
        return "busy: no verdict"
    return {True: "met", False: "NOT MET", None: "info"}[passed] + ("" if checked else " (unchecked)")


def conditions_text(result: dict[str, Any]) -> str:
    """The machine beside the figures: the load before and during, other processes, busy or not."""
    conditions = result.get("conditions")
    if not conditions:
        return "not recorded (before issue 26: no rounds, no conditions)"
    before, during = conditions["load_before"], conditions["load_during"]
    waited = f", waited {before['waited_s']:.0f} s" if before["waited_s"] else ""
    text = (
        f"load {before['at_start'][0]:.2f} at the start{waited}; "
        f"during {during['median']:.2f} median, {during['max']:.2f} max"
    )
    if conditions["busy"]:
        return "BUSY, " + text + "; " + "; ".join(conditions["busy_reasons"])
    return text + "; no other process above 10% of a core"


def rows_of(result: dict[str, Any]) -> list[list[str]]:
    """Table lines for one result record (the JSON form)."""
    if result.get("error"):
        return [
            [result["name"], "error", "—", "—", "—", "", "ERROR: " + result["error"].splitlines()[0][:80], ""]
        ]
    unit, busy = result["unit"], bool(result.get("busy"))
    sides = result["baseline"], result["candidate"]
    lines = [
        [
            result["name"],
            result["metric"],
            *(
                f"{_figure(side.get('value'), unit, side.get('spread'))} ({side.get('label', '')})"
                for side in sides
            ),
            _ratio(result["ratio"], result.get("ratio_at_quartiles")),
            result["target"],
            _verdict(result["pass"], None, busy, checked="conditions" in result),
            conditions_text(result),
        ]
    ]
    for extra in result.get("rows", []):
        extra_unit = extra.get("unit", unit)
        spreads = extra.get("spread", {})
        lines.append(
            [
                "",
                extra["label"],
                _figure(extra.get("baseline"), extra_unit, spreads.get("baseline"))
                if "baseline" in extra
                else "",
                _figure(extra.get("candidate"), extra_unit, spreads.get("candidate")),
                _ratio(extra.get("ratio"), extra.get("ratio_at_quartiles")),
                extra.get("target", ""),
                _verdict(extra["pass"], None, busy, checked="conditions" in result)
                if "pass" in extra
                else "",
                "",
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
        "conditions",
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
    head = (
        f"\nPulse benchmarks on {cores} cores, {memory} GiB (ratio = candidate / baseline, of the medians "
        "over rounds; a target is met only at the quartiles, on a machine that was not busy)\n"
    )
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
