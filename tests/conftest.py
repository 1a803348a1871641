"""Shared fixtures: the jar cache, a per-test PULSE_HOME, and one Spark session per run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def jars_dir() -> Path:
    """The jar cache `make setup` filled; tests share it instead of resolving again."""
    configured = os.environ.get("PULSE_JARS")
    if configured:
        return Path(configured)
    home = Path(os.environ.get("PULSE_HOME", REPO / ".pulse"))
    return (home if home.is_absolute() else REPO / home) / "jars"


@pytest.fixture
def pulse_home(tmp_path: Path, jars_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh PULSE_HOME for one test, exported to the environment, sharing the jar cache."""
    home = tmp_path / "pulse-home"
    home.mkdir()
    monkeypatch.setenv("PULSE_HOME", str(home))
    monkeypatch.setenv("PULSE_JARS", str(jars_dir))
    for name in ("PULSE_ENV", "PULSE_LAKE", "PULSE_KAFKA_BOOTSTRAP", "PULSE_KAFKA_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory, jars_dir: Path) -> Iterator[object]:
    """One local Spark session (with the Kafka and Delta jars) for the whole run: it takes ~10 s to start."""
    from pulse.spark import get_spark
    from pulse_core.settings import PulseSettings

    home = tmp_path_factory.mktemp("spark-home")
    session = get_spark("pulse-tests", PulseSettings(home=home, jars=jars_dir))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, jars_dir: Path) -> Iterator[object]:
    """A real broker with a SASL_SSL listener and generated CA and API keys (tests/kafka_secure.py)."""
    from tests.kafka_secure import start_secure_broker

    yield from start_secure_broker(tmp_path_factory.mktemp("sasl-home"), jars_dir)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", default=False, help="Run the fault tests at benchmark size (slow)."
    )


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """True under `pytest --long`: fault tests scale up to their benchmark size."""
    return bool(request.config.getoption("--long"))
