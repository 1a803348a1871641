"""Helpers for tests that start real services as processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port_pair() -> int:
    """A port P such that P and P+1 (broker and controller) are both free on loopback."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports on 127.0.0.1")


def run_pulse(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real `pulse` CLI in a child process with the current environment."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )


@dataclass(frozen=True)
class Broker:
    """A broker started by `pulse local up` for one test."""

    home: Path
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def broker(pulse_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A real Kafka broker on a free port, stopped after the test whatever happens."""
    port = free_port_pair()
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    started = run_pulse("local", "up", "--port", str(port))
    log = pulse_home / "logs" / "kafka.log"
    assert started.returncode == 0, (
        started.stdout + started.stderr + (log.read_text() if log.exists() else "")
    )
    try:
        yield Broker(pulse_home, port)
    finally:
        run_pulse("local", "down")
