"""The record each benchmark writes to `benchmarks/results/<name>.json`, and what the machine was."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "total_memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass
class Result:
    """One benchmark's record, written to `benchmarks/results/<name>.json`.

    `ratio` is candidate / baseline for the headline metric (of the medians, where there are rounds);
    `better` says which direction is good. `conditions` is what the machine was like (benchmarks.conditions):
    a busy result keeps its figures but never says "met": its `pass`, and every row's, is null.
    """

    name: str
    quick: bool
    parameters: dict[str, Any]
    metric: str
    unit: str
    better: str  # "higher" or "lower"
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    ratio: float | None
    target: str
    passed: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # extra table lines: label, figures, ratio
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    wall_seconds: float = 0.0
    error: str | None = None
    ratio_at_quartiles: float | None = None  # benchmarks.spread: the ratio the target is decided on
    conditions: dict[str, Any] = field(default_factory=dict)

    @property
    def busy(self) -> bool:
        return bool(self.conditions.get("busy"))

    def to_json(self, machine: dict[str, Any]) -> str:
        body = {
            "name": self.name,
            "timestamp": self.started,
            "quick": self.quick,
            "machine": machine,
            "parameters": self.parameters,
            "metric": self.metric,
            "unit": self.unit,
            "better": self.better,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "ratio_at_quartiles": None
            if self.ratio_at_quartiles is None
            else round(self.ratio_at_quartiles, 3),
            "target": self.target,
            "busy": self.busy,
            "pass": None if self.busy else self.passed,
            "conditions": self.conditions,
            "rows": [row | {"pass": None} if self.busy and "pass" in row else row for row in self.rows],
            "details": self.details,
            "notes": self.notes,
            "wall_seconds": round(self.wall_seconds, 1),
            "error": self.error,
        }
        return json.dumps(body, indent=2, default=str) + "\n"


def ratio(candidate: float | None, baseline: float | None) -> float | None:
    """candidate / baseline, or None when either is missing or the baseline is zero."""
    if candidate is None or not baseline:
        return None
    return candidate / baseline


def compared(label: str, baseline: float | None, candidate: float | None, unit: str) -> dict[str, Any]:
    """A table row: a figure beside its baseline, with candidate ÷ baseline."""
    figures = {"baseline": baseline, "candidate": candidate, "unit": unit}
    return {"label": label, **figures, "ratio": ratio(candidate, baseline)}


def headline(
    comparison: dict[str, Any],
    baseline: dict[str, Any],
    candidate: dict[str, Any],
) -> dict[str, Any]:
    """A `Result`'s headline from `benchmarks.spread.compare`: each side (its label and raw figures, as
    given) with its median as the `value` and its spread, and both ratios."""
    return {
        "baseline": {**baseline, "value": comparison["baseline"]["median"], "spread": comparison["baseline"]},
        "candidate": {
            **candidate,
            "value": comparison["candidate"]["median"],
            "spread": comparison["candidate"],
        },
        "ratio": comparison["ratio"],
        "ratio_at_quartiles": comparison["ratio_at_quartiles"],
    }


def compared_rounds(label: str, comparison: dict[str, Any], unit: str) -> dict[str, Any]:
    """A table row from `benchmarks.spread`: each side's median with its spread, the ratio of the medians,
    the ratio at the quartiles, and the target's verdict when there is a target."""
    baseline = comparison["baseline"]
    row = {
        "label": label,
        "baseline": comparison.get("limit") if baseline is None else baseline["median"],
        "candidate": comparison["candidate"]["median"],
        "unit": unit,
        "ratio": comparison["ratio"],
        "ratio_at_quartiles": comparison["ratio_at_quartiles"],
        "spread": {side: comparison[side] for side in ("baseline", "candidate") if comparison[side]},
    }
    if comparison["target"] is not None:
        row |= {"target": comparison["target"], "pass": comparison["met"]}
    return row


def failed_result(name: str, quick: bool, error: str) -> Result:
    """The record of a benchmark that could not finish: no figures, the error kept."""
    return Result(
        name=name,
        quick=quick,
        parameters={},
        metric="",
        unit="",
        better="",
        baseline={},
        candidate={},
        ratio=None,
        target="",
        passed=None,
        error=error[-2000:],
    )
