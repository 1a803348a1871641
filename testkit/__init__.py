"""What the tests and the benchmarks share: the independent Gold oracle (`gold_reference`) and realistic
Gold tables for the dashboard (`gold_fixture`). Neither deployable ships it, and it imports neither the
tests nor the benchmarks."""
