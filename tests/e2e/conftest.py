"""Helpers for tests that start real services as processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pulse.devstack.broker import free_port_pair


def run_pulse(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run the real `pulse` CLI in a child process with the current environment."""
    return subprocess.run(
        [sys.executable, "-m", "pulse.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
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
    """A broker started by `pulse broker up` for one test."""

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
    started = run_pulse("broker", "up", "--port", str(port))
    log = pulse_home / "logs" / "kafka.log"
    assert started.returncode == 0, (
        started.stdout + started.stderr + (log.read_text() if log.exists() else "")
    )
    try:
        yield Broker(pulse_home, port)
    finally:
        run_pulse("broker", "down")
