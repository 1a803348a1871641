"""Checks that run before any work starts, so a bad environment stops with a message, not a stack trace."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from app.settings import PulseSettings


class PreflightError(RuntimeError):
    """The environment cannot run the job. The message says what to fix."""


def is_local(path: str) -> bool:
    """True for a local lake path (not abfss://, az://, s3://, …)."""
    return "://" not in path


def check_lake(settings: PulseSettings) -> None:
    """The lake can be written and has room: a local folder must be creatable, writable and not full."""
    root = settings.lake_root
    if not is_local(root):
        return
    path = Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".pulse-write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise PreflightError(
            f"The lake path {path} cannot be written ({exc.strerror or exc}). "
            "Point PULSE_LAKE (or PULSE_HOME) at a writable folder."
        ) from None
    free_mb = shutil.disk_usage(path).free / 1024 / 1024
    if free_mb < settings.min_free_mb:
        raise PreflightError(
            f"The disk holding the lake ({path}) has only {free_mb:,.0f} MB free; Pulse needs at least "
            f"{settings.min_free_mb:,} MB (PULSE_MIN_FREE_MB). Free some space or move PULSE_LAKE."
        )


def check_kafka(settings: PulseSettings, timeout_s: float = 10.0) -> dict[str, int]:
    """The broker answers and has the events topic. Returns topic → partition count."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**settings.kafka_client_config(), "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise PreflightError(
            f"Cannot reach Kafka at {settings.kafka_bootstrap} within {timeout_s:g} s ({exc.args[0].str()}). "
            "Start it with `pulse local up`, or fix PULSE_KAFKA_BOOTSTRAP and the credentials."
        ) from None
    topics = {name: len(topic.partitions) for name, topic in metadata.topics.items()}
    if settings.kafka_topic not in topics:
        raise PreflightError(
            f"Kafka at {settings.kafka_bootstrap} has no topic {settings.kafka_topic!r}. "
            "Create it (`pulse local up` does) or fix PULSE_KAFKA_TOPIC."
        )
    return topics
