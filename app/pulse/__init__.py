"""Pulse: real-time analytics for live-stream audiences."""

__version__ = "0.1.0"
