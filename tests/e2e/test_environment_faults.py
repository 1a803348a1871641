"""Environment faults stop with a clear message naming what to fix, never a stack trace."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from pulse.preflight import check_kafka
from pulse_core.settings import load_settings
from tests.e2e.conftest import free_port_pair, run_pulse

pytestmark = [pytest.mark.e2e, pytest.mark.fault]


def _clean(result) -> str:
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout + result.stderr


def test_unwritable_lake_path(pulse_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = pulse_home / "not-a-folder"
    blocker.write_text("a file where the lake should be")
    monkeypatch.setenv("PULSE_LAKE", str(blocker / "lake"))
    result = run_pulse("pipeline", "silver", "--once")
    assert result.returncode == 1
    assert f"The lake path {blocker / 'lake'} cannot be written" in _clean(result)


def test_full_disk(pulse_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A disk is "full" when it has less free space than Pulse needs; ask for more than any disk has.
    monkeypatch.setenv("PULSE_MIN_FREE_MB", str(10**12))
    result = run_pulse("pipeline", "all", "--once")
    assert result.returncode == 1
    output = _clean(result)
    assert "MB free" in output
    assert "PULSE_MIN_FREE_MB" in output


def test_unreachable_broker_at_start(pulse_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port_pair()  # nothing listens there
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    for command in (("produce", "--events", "10"), ("pipeline", "bronze", "--once")):
        result = run_pulse(*command)
        assert result.returncode == 1, command
        assert f"Cannot reach Kafka at 127.0.0.1:{port}" in _clean(result)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PULSE_ENV", "qa"), ("PULSE_KAFKA_BOOTSTRAP", "no-port"), ("PULSE_MIN_FREE_MB", "-5")],
)
def test_bad_settings(pulse_home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    for command in (("pipeline", "gold", "--once"), ("produce", "--events", "1"), ("broker", "status")):
        result = run_pulse(*command)
        assert result.returncode == 2, command
        output = _clean(result)
        assert "Invalid Pulse settings" in output
        assert variable in output


def test_preflight_waits_for_a_broker_that_is_starting(
    pulse_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pulse pipeline --wait-for-kafka`, as `pulse demo` uses it: the check waits for a broker started after
    it, and for its topic."""
    port = free_port_pair()
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    settings = load_settings()
    started: list[subprocess.CompletedProcess[str]] = []
    later = threading.Timer(3.0, lambda: started.append(run_pulse("broker", "up", "--port", str(port))))
    later.start()
    try:
        topics = check_kafka(settings, wait_s=300)
    finally:
        later.join()
        run_pulse("broker", "down")
    assert started[0].returncode == 0, started[0].stdout + started[0].stderr
    assert topics[settings.kafka_topic] == 3
