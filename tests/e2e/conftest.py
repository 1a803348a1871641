"""Helpers for tests that start real services as processes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pulse.devstack.broker import free_port_pair
from pulse_core.settings import PulseSettings


def run_pulse(
    *args: str, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `pulse` CLI in a child process with `env` (default: the current environment)."""
    return subprocess.run(
        [sys.executable, "-m", "pulse.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy() if env is None else env,
        check=False,
    )


def start_live_pipeline(log: Path, *extra: str) -> subprocess.Popen:
    """`pulse pipeline all` running continuously in its own process group, its output appended to `log`."""
    options = list(extra) or ["--max-offsets-per-trigger", "5000"]
    with log.open("a") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", "pipeline", "all", "--trigger-seconds", "1", *options],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
            env=os.environ.copy(), start_new_session=True,
        )  # fmt: skip


def wait_for_log_line(log: Path, text: str, process: subprocess.Popen, timeout_s: float = 600,
                      poll_s: float = 0.5) -> None:  # fmt: skip
    """Wait until `text` appears in `log`; fail with the log's tail when `process` exits first or time runs
    out."""
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} within {timeout_s:.0f} s"
        time.sleep(poll_s)


@dataclass(frozen=True)
class Broker:
    """A real broker for one test: `home` is the test's PULSE_HOME (its lake is `home / "lake"`), `port`
    the broker's, and `topic` the events topic PULSE_KAFKA_TOPIC names."""

    home: Path
    port: int
    topic: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


# What `pulse broker up` gives the events topic by default.
TOPIC_PARTITIONS = 3
_topics = itertools.count(1)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory, jars_dir: Path) -> Iterator[int]:
    """One real Kafka broker (`pulse broker up`) for the whole run, in a home of its own: its port.

    Starting and stopping a broker took about 8 s a test; tests that share this one get a topic each
    (`broker`). A test that stops or restarts its broker asks for `own_broker`.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSE_")}
    env |= {"PULSE_HOME": str(tmp_path_factory.mktemp("kafka-home")), "PULSE_JARS": str(jars_dir)}
    port = free_port_pair()
    started = run_pulse("broker", "up", "--port", str(port), env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield port
    finally:
        run_pulse("broker", "down", env=env)


@pytest.fixture
def broker(pulse_home: Path, monkeypatch: pytest.MonkeyPatch, kafka: int) -> Broker:
    """The run's broker (`kafka`), with a new events topic for this test alone: no test sees another's
    records."""
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"events-{next(_topics)}"
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{kafka}"})  # kept until the topic exists
    created = admin.create_topics([NewTopic(topic, num_partitions=TOPIC_PARTITIONS, replication_factor=1)])
    created[topic].result(timeout=30)
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", f"127.0.0.1:{kafka}")
    monkeypatch.setenv("PULSE_KAFKA_TOPIC", topic)
    return Broker(pulse_home, kafka, topic)


@pytest.fixture
def own_broker(pulse_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A broker of this test's own (`pulse broker up` in its PULSE_HOME, on a free port), for a test that
    stops or restarts it; stopped after the test whatever happens."""
    port = free_port_pair()
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    started = run_pulse("broker", "up", "--port", str(port))
    log = pulse_home / "logs" / "kafka.log"
    assert started.returncode == 0, (
        started.stdout + started.stderr + (log.read_text() if log.exists() else "")
    )
    try:
        yield Broker(pulse_home, port, PulseSettings.model_fields["kafka_topic"].default)
    finally:
        run_pulse("broker", "down")
