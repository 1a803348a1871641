"""Pure transforms: DataFrame in, DataFrame (or Column) out. No reads, no writes, no global session."""
