"""Streaming jobs: each one reads, transforms and writes, in three visible steps."""
