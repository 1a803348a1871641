"""What the pipeline and the dashboard share: the event contract, the table catalogue, the settings, the
progress record, the numbers that define Gold (`semantics`) and the clock. It imports nothing of either
deployable (import-linter checks it, pyproject.toml)."""
