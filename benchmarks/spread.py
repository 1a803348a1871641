"""Rounds of a baseline and a candidate, run alternately (A B A B …): the spread of each side, the ratio of
their medians, and the quartile rule that decides a target.

A target is met only when it holds at the quartiles, on the side that is worse for the candidate: where
higher is better, the candidate's lower quartile against the baseline's upper quartile; where lower is
better (seconds), the candidate's upper quartile against the baseline's lower quartile. Fewer than
`MIN_ROUNDS` rounds on a side give no verdict.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.stats import percentile

MIN_ROUNDS = 5


def spread(values: Sequence[float]) -> dict[str, Any]:
    """The median, the quartiles and the interquartile range of one side's rounds (and every round)."""
    if not values:
        return {"rounds": 0, "median": None, "q1": None, "q3": None, "iqr": None, "values": []}
    q1, median, q3 = (percentile(values, q) for q in (25, 50, 75))
    assert q1 is not None
    assert median is not None
    assert q3 is not None
    return {
        "rounds": len(values),
        "median": _round(median),
        "q1": _round(q1),
        "q3": _round(q3),
        "iqr": _round(q3 - q1),
        "values": [_round(v) for v in values],
    }


def _round(value: float) -> float:
    return round(value, 4) if abs(value) < 100 else round(value, 1)


def consecutive(values: Sequence[float], parts: int = MIN_ROUNDS) -> list[list[float]]:
    """`values` (in the order they were measured) cut into `parts` consecutive rounds of near-equal size:
    the rounds of one long measurement, where a benchmark compares with a fixed limit, not a baseline."""
    bounds = [round(i * len(values) / parts) for i in range(parts + 1)]
    return [list(values[low:high]) for low, high in itertools.pairwise(bounds) if high > low]


@dataclass(frozen=True)
class Target:
    """candidate ÷ baseline must be at least (`better` = "higher") or at most ("lower") `ratio`."""

    ratio: float
    better: str

    def __str__(self) -> str:
        return f"{'>=' if self.better == 'higher' else '<='} {self.ratio:g}x"


def _quartiles(better: str) -> tuple[str, str]:
    """Which quartile of the candidate and of the baseline the rule compares: the candidate's worse one."""
    return ("q1", "q3") if better == "higher" else ("q3", "q1")


def compare(
    baseline: Sequence[float], candidate: Sequence[float], better: str, target: Target | None = None
) -> dict[str, Any]:
    """Both sides' spread, the ratio of medians, the ratio at the quartiles, and whether `target` is met
    (None without a target or with fewer than `MIN_ROUNDS` rounds on a side)."""
    sides = {"baseline": spread(baseline), "candidate": spread(candidate)}
    mine, theirs = _quartiles(better)
    return _verdict(
        sides,
        _ratio(sides["candidate"]["median"], sides["baseline"]["median"]),
        _ratio(sides["candidate"][mine], sides["baseline"][theirs]),
        better,
        target,
        min(len(baseline), len(candidate)),
    )


def against_limit(values: Sequence[float], limit: float, better: str) -> dict[str, Any]:
    """One side's rounds against a fixed limit (a target in seconds, say): met when the candidate's worse
    quartile is within it."""
    sides: dict[str, Any] = {"baseline": None, "candidate": spread(values)}
    mine, _ = _quartiles(better)
    return {"limit": limit} | _verdict(
        sides,
        _ratio(sides["candidate"]["median"], limit),
        _ratio(sides["candidate"][mine], limit),
        better,
        Target(1.0, better),
        len(values),
    )


def all_met(verdicts: Sequence[bool | None]) -> bool | None:
    """Several targets together: missed if one is missed, else undecided if one is, else met."""
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _ratio(candidate: float | None, baseline: float | None) -> float | None:
    return None if candidate is None or not baseline else candidate / baseline


def _verdict(
    sides: dict[str, Any],
    ratio: float | None,
    at_quartiles: float | None,
    better: str,
    target: Target | None,
    rounds: int,
) -> dict[str, Any]:
    met: bool | None = None
    if target is not None and rounds >= MIN_ROUNDS and at_quartiles is not None:
        met = at_quartiles >= target.ratio if better == "higher" else at_quartiles <= target.ratio
    return {
        **sides,
        "ratio": ratio,
        "ratio_at_quartiles": at_quartiles,
        "better": better,
        "target": None if target is None else str(target),
        "met": met,
        "rounds": rounds,
    }
