"""The embedded broker: a real KRaft Kafka process driven through the `pulse broker` CLI."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psutil
import pytest
from confluent_kafka import Consumer, Producer

from pulse.devstack.broker import port_is_free
from tests.e2e.conftest import Broker, free_port_pair, run_pulse

pytestmark = pytest.mark.e2e


def _produce(bootstrap: str, topic: str, count: int, prefix: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    failures: list[str] = []

    def on_delivery(error: object, _msg: object) -> None:
        if error is not None:
            failures.append(str(error))

    for i in range(count):
        producer.produce(topic, key=f"video_{i % 7}", value=f"{prefix}-{i}", on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []


def _consume_all(bootstrap: str, topic: str, expected: int, group: str) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                assert msg.error() is None, msg.error()
                values.append(msg.value().decode())
        # Anything beyond the expected count would be a duplicate: read a little longer to see it.
        values.extend(m.value().decode() for m in consumer.consume(500, timeout=1.0) if m.error() is None)
    finally:
        consumer.close()
    return values


def _broker_pids(home: Path) -> list[int]:
    config = str((home / "kafka" / "server.properties").resolve())
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "kafka.Kafka" in cmdline and config in cmdline:
            pids.append(proc.pid)
    return pids


def test_round_trip_then_down_frees_everything_and_up_reuses_data(own_broker: Broker) -> None:
    topic = "user-interactions"
    _produce(own_broker.bootstrap, topic, 1000, "first")
    values = _consume_all(own_broker.bootstrap, topic, 1000, "round-trip")
    assert sorted(values) == sorted(f"first-{i}" for i in range(1000))

    status = run_pulse("broker", "status")
    assert status.returncode == 0
    assert f"127.0.0.1:{own_broker.port}" in status.stdout
    assert "user-interactions (3 partitions)" in status.stdout

    meta = (own_broker.home / "kafka" / "data" / "meta.properties").read_text()
    down = run_pulse("broker", "down")
    assert down.returncode == 0, down.stderr
    assert "Stopped the broker" in down.stdout
    assert _broker_pids(own_broker.home) == []
    assert port_is_free(own_broker.port)
    assert port_is_free(own_broker.port + 1)
    assert run_pulse("broker", "status").returncode == 1

    again = run_pulse("broker", "up", "--port", str(own_broker.port))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Formatting" not in again.stdout
    assert (own_broker.home / "kafka" / "data" / "meta.properties").read_text() == meta
    # The data survived the restart: a new group still reads the first 1,000 messages.
    assert len(_consume_all(own_broker.bootstrap, topic, 1000, "after-restart")) == 1000


def test_up_is_idempotent(own_broker: Broker) -> None:
    pids = _broker_pids(own_broker.home)
    second = run_pulse("broker", "up", "--port", str(own_broker.port))
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout
    assert _broker_pids(own_broker.home) == pids


def test_port_in_use_names_the_port(pulse_home: Path) -> None:
    port = free_port_pair()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_pulse("broker", "up", "--port", str(port))
    assert result.returncode == 1
    assert f"Port {port}" in result.stderr
    assert "already in use" in result.stderr
    assert _broker_pids(pulse_home) == []


def test_down_when_nothing_runs_says_so(pulse_home: Path) -> None:
    result = run_pulse("broker", "down")
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout


def test_status_sees_a_stale_pid_file(pulse_home: Path) -> None:
    (pulse_home / "kafka").mkdir()
    (pulse_home / "kafka" / "broker.pid").write_text('{"pid": 999999999, "port": 1}')
    result = run_pulse("broker", "status")
    assert result.returncode == 1
    assert "stale pid file" in result.stdout
