"""The quartile rule: a target is met only when it holds at the candidate's worse quartile."""

from __future__ import annotations

import json

import pytest

from benchmarks.report import rows_of
from benchmarks.result import Result, compared_rounds
from benchmarks.spread import MIN_ROUNDS, Target, against_limit, all_met, compare, consecutive, spread

AT_LEAST_1X = Target(1.0, "higher")
AT_MOST_1X = Target(1.0, "lower")


def test_spread_gives_the_median_and_the_interquartile_range() -> None:
    assert spread([5, 1, 3, 2, 4]) == {
        "rounds": 5, "median": 3, "q1": 2, "q3": 4, "iqr": 2, "values": [5, 1, 3, 2, 4],
    }  # fmt: skip
    assert spread([])["median"] is None


def test_higher_is_better_met_when_the_candidates_lower_quartile_beats_the_baselines_upper() -> None:
    java = [100.0, 101.0, 102.0, 103.0, 104.0]
    pulse = [110.0, 111.0, 112.0, 113.0, 114.0]
    verdict = compare(java, pulse, "higher", AT_LEAST_1X)
    assert verdict["ratio"] == pytest.approx(112 / 102)
    assert verdict["ratio_at_quartiles"] == pytest.approx(111 / 103)
    assert verdict["met"] is True


def test_a_better_median_is_not_enough_when_the_rounds_overlap() -> None:
    # The medians say 1.1x; the candidate's lower quartile (100) is under the baseline's upper (105).
    java = [90.0, 95.0, 100.0, 105.0, 140.0]
    pulse = [80.0, 100.0, 110.0, 115.0, 120.0]
    verdict = compare(java, pulse, "higher", AT_LEAST_1X)
    assert verdict["ratio"] == pytest.approx(1.1)
    assert verdict["ratio_at_quartiles"] == pytest.approx(100 / 105)
    assert verdict["met"] is False


def test_lower_is_better_compares_the_candidates_upper_quartile_with_the_baselines_lower() -> None:
    spark = [3.0, 3.1, 3.2, 3.3, 9.0]
    deltalake = [0.1, 0.1, 0.2, 3.15, 3.5]  # median far lower, but its upper quartile is above Spark's lower
    verdict = compare(spark, deltalake, "lower", AT_MOST_1X)
    assert verdict["ratio"] == pytest.approx(0.2 / 3.2)
    assert verdict["ratio_at_quartiles"] == pytest.approx(3.15 / 3.1)
    assert verdict["met"] is False
    assert compare(spark, [0.1, 0.1, 0.2, 0.2, 0.3], "lower", AT_MOST_1X)["met"] is True


def test_fewer_rounds_than_the_minimum_give_no_verdict() -> None:
    rounds = MIN_ROUNDS - 1
    verdict = compare([1.0] * rounds, [10.0] * rounds, "higher", AT_LEAST_1X)
    assert verdict["ratio"] == 10
    assert verdict["met"] is None
    assert compare([1.0] * MIN_ROUNDS, [10.0] * MIN_ROUNDS, "higher")["met"] is None  # no target


def test_a_fixed_limit_is_met_only_at_the_candidates_worse_quartile() -> None:
    assert against_limit([3.0, 3.5, 4.0, 4.8, 6.0], 5.0, "lower")["met"] is True
    within_by_median = against_limit([3.0, 4.9, 4.95, 5.1, 5.3], 5.0, "lower")
    assert within_by_median["ratio"] < 1
    assert within_by_median["met"] is False


def test_the_table_shows_the_spread_and_the_ratio_at_the_quartiles() -> None:
    verdict = compare(
        [100.0, 101.0, 102.0, 103.0, 104.0], [90.0, 91.0, 92.0, 93.0, 94.0], "higher", AT_LEAST_1X
    )
    result = Result(
        name="producer", quick=False, parameters={}, metric="events/s", unit="events/s", better="higher",
        baseline={"label": "Java", "value": 102, "spread": verdict["baseline"]},
        candidate={"label": "pulse", "value": 92, "spread": verdict["candidate"]},
        ratio=verdict["ratio"], ratio_at_quartiles=verdict["ratio_at_quartiles"], target=">= 1x",
        passed=verdict["met"], rows=[compared_rounds("mean event", verdict, "events/s")],
    )  # fmt: skip
    headline, row = rows_of(json.loads(result.to_json({})))
    assert "[IQR 101-103, 5 rounds]" in headline[2]
    assert "(at the quartiles 0.88x)" in headline[4]
    assert headline[6] == "NOT MET"
    assert row[6] == "NOT MET"
    assert row[3] == "92.00 events/s [IQR 91.00-93.00, 5 rounds]"


def test_one_long_measurement_cuts_into_consecutive_rounds_in_order() -> None:
    assert consecutive(list(range(10))) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert [len(part) for part in consecutive(list(range(12)))] == [2, 3, 2, 3, 2]
    assert consecutive([1.0, 2.0]) == [[1.0], [2.0]]


def test_several_targets_are_missed_if_one_is_and_undecided_if_one_is() -> None:
    assert all_met([True, True]) is True
    assert all_met([True, None]) is None
    assert all_met([None, False]) is False
