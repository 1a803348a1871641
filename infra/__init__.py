"""Pulse infrastructure as code: one cdktf stack per environment (dev, staging, prod)."""
