"""The driver_windows benchmark measures what it says: both ways give the same rows, on a real simulation."""

from __future__ import annotations

from benchmarks.driver_windows import one_round, simulated


def test_a_round_times_both_ways_over_the_same_rows() -> None:
    events = simulated(200, 40)
    assert events.num_rows > 2_000
    measured = one_round(events, held_s=30, batches=3)  # raises when the cells' rows differ from a recount
    assert measured["held_events"] > 1_000
    assert measured["batch_events"] > 50
    assert measured["recount_context_events"] > measured["batch_events"]
    assert measured["recount_ms"] > 0
    assert measured["cells_ms"] > 0
