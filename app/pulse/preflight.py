"""Checks that run before any work starts, so a bad environment stops with a message, not a stack trace."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.preflight")


class PreflightError(RuntimeError):
    """The environment cannot run the job. The message says what to fix."""


def on_local_disk(path: str) -> bool:
    """True for a local lake path (not abfss://, az://, s3://, …)."""
    return "://" not in path


def check_lake(settings: PulseSettings) -> None:
    """The lake can be written and has room: a local folder must be creatable, writable and not full."""
    root = settings.lake_root
    if not on_local_disk(root):
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


class KafkaNotReadyError(PreflightError):
    """No broker answered, or it has no events topic yet: a broker that is still starting looks like this."""


UNREACHABLE = "Cannot reach"


def check_kafka(settings: PulseSettings, timeout_s: float = 10.0, wait_s: float = 0.0) -> dict[str, int]:
    """The broker answers and has the events topic. Returns topic → partition count.

    `wait_s` keeps asking for that long while no broker answers or the topic is missing (a broker started
    alongside the pipeline, as `pulse demo` does); a rejected credential or certificate fails at once.

    Raises:
        PreflightError: one line naming what to fix: the bootstrap address, the API key or secret, the
            security protocol, or the CA that signed the broker's certificate.
    """
    deadline = time.monotonic() + wait_s
    waiting = False
    while True:
        try:
            return _check_kafka_once(settings, timeout_s)
        except KafkaNotReadyError:
            if time.monotonic() >= deadline:
                raise
            if not waiting:
                where = f"Kafka at {settings.kafka_bootstrap} and its topic {settings.kafka_topic!r}"
                log.info(f"waiting up to {wait_s:g} s for {where}")
                waiting = True
            time.sleep(1.0)


def _check_kafka_once(settings: PulseSettings, timeout_s: float) -> dict[str, int]:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    seen: list[str] = []
    # librdkafka's own logs and error reports say why a connection failed; keep them off the console.
    client_log = logging.getLogger("pulse.preflight.kafka")
    client_log.propagate = False
    client_log.setLevel(logging.INFO)
    handler = _Collect(seen)
    client_log.addHandler(handler)
    config: dict[str, Any] = {
        **settings.kafka_client_config(),
        "logger": client_log,
        "error_cb": lambda error: seen.append(error.str()),
    }
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        admin.poll(0.5)  # serve the queued error reports and logs
        seen.append(exc.args[0].str())
        message = kafka_failure(settings, seen, timeout_s)
        error = KafkaNotReadyError if message.startswith(UNREACHABLE) else PreflightError
        raise error(message) from None
    finally:
        client_log.removeHandler(handler)
    topics = {name: len(topic.partitions) for name, topic in metadata.topics.items()}
    if settings.kafka_topic not in topics:
        raise KafkaNotReadyError(
            f"Kafka at {settings.kafka_bootstrap} has no topic {settings.kafka_topic!r}. "
            "Create it (`pulse broker up` does) or fix PULSE_KAFKA_TOPIC."
        )
    return topics


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def kafka_failure(settings: PulseSettings, errors: list[str], timeout_s: float) -> str:
    """One line saying why the Kafka client could not connect, from librdkafka's error reports."""
    text = " | ".join(errors).lower()
    where = f"Kafka at {settings.kafka_bootstrap}"
    if "authentication failed" in text or "invalid credentials" in text or "invalid username" in text:
        return (
            f"{where} rejected the API key or secret (SASL {settings.kafka_sasl_mechanism} authentication "
            "failed): check PULSE_KAFKA_API_KEY and PULSE_KAFKA_API_SECRET."
        )
    if "certificate verify failed" in text or "could not be verified" in text:
        return (
            f"{where} presented a TLS certificate this machine does not trust: set "
            "PULSE_KAFKA_SSL_CA_LOCATION to the CA that signed it (`pulse broker up --sasl-ssl` prints one)."
        )
    not_tls = ("plaintext broker listener", "wrong version number", "record layer failure")
    if any(hint in text for hint in not_tls):
        return (
            f"{where} does not speak TLS on that port, but PULSE_KAFKA_SECURITY_PROTOCOL is SASL_SSL: point "
            "PULSE_KAFKA_BOOTSTRAP at the SASL_SSL listener, or set the protocol to PLAINTEXT."
        )
    if settings.kafka_security_protocol == "PLAINTEXT" and (
        "security.protocol" in text or "ssl listener" in text or "state apiversion_query" in text
    ):
        return (
            f"{where} closed the connection: it expects TLS and SASL, but PULSE_KAFKA_SECURITY_PROTOCOL is "
            "PLAINTEXT. Set it to SASL_SSL with PULSE_KAFKA_API_KEY and PULSE_KAFKA_API_SECRET."
        )
    reason = errors[-1] if errors else "no answer"
    return (
        f"{UNREACHABLE} {where} within {timeout_s:g} s ({reason}). Start it with `pulse broker up`, or fix "
        "PULSE_KAFKA_BOOTSTRAP and the credentials."
    )
