"""What the pipeline and the dashboard share: the event contract, the table catalogue, the settings and
the progress record. It imports nothing of either deployable (import-linter checks it, pyproject.toml)."""
