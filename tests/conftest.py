"""Shared fixtures: the jar cache, a per-test PULSE_HOME, and one Spark session per run; and which tests
the fast loop runs.

What `make test-unit` (`pytest --unit`) leaves out is decided here, not by hand:

- `e2e`: every test under `tests/e2e/`, and any test that asks for a fixture that starts a Spark
  session, a Kafka broker or a browser (`SERVICE_FIXTURES`);
- `artifact`: any test that asks for a fixture that builds or installs a deployable (`ARTIFACT_FIXTURES`),
  and the checkov scans (marked in their modules).

In the `--unit` run, a test that starts a Spark session, a broker, a browser, checkov, a wheel build or a
clean install any other way fails at once and says how to mark it: a slow test cannot slip into the fast
loop unnoticed. `make test` runs everything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
E2E_DIR = REPO / "tests" / "e2e"
# Fixtures that start a Spark session, a Kafka broker or a browser: a test that uses one is e2e.
SERVICE_FIXTURES = frozenset({"spark", "kafka", "broker", "own_broker", "secure_broker"})
# Fixtures that build the wheel, install it into clean venvs, or build the dashboard image's wheels.
ARTIFACT_FIXTURES = frozenset({"built_wheel", "job_cluster", "image_wheels"})
# Command words that build, install or scan an artifact: the unit run refuses to start them.
ARTIFACT_COMMANDS = (("checkov",), ("-m", "build"), ("-m", "venv"), ("-m", "pip", "install"))
HOW_TO_MARK = (
    "ask for the fixture that provides it (`spark`, `broker`, `secure_broker`, `built_wheel`, …), mark the "
    "test `e2e` or `artifact`, or move it to tests/e2e/ (tests/conftest.py)"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", default=False, help="Run the fault tests at benchmark size (slow)."
    )
    parser.addoption(
        "--unit",
        action="store_true",
        default=False,
        help="The fast loop (make test-unit): leave out e2e and artifact tests, and refuse services.",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The unit run does not even import the e2e modules (their imports alone take seconds).
    if config.getoption("--unit") and (collection_path == E2E_DIR or E2E_DIR in collection_path.parents):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if E2E_DIR in item.path.parents or SERVICE_FIXTURES & fixtures:
            item.add_marker(pytest.mark.e2e)
        if ARTIFACT_FIXTURES & fixtures:
            item.add_marker(pytest.mark.artifact)
    if not config.getoption("--unit"):
        return
    slow = [item for item in items if item.get_closest_marker("e2e") or item.get_closest_marker("artifact")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item not in slow]


def _refuse(what: str) -> Callable[..., object]:
    def refuse(*args: object, **kwargs: object) -> object:
        raise RuntimeError(f"a unit test (`make test-unit`) started {what}: {HOW_TO_MARK}")

    return refuse


def _artifact_command(args: object) -> tuple[str, ...] | None:
    words = [os.path.basename(str(word)) for word in args] if isinstance(args, Sequence) else []
    if isinstance(args, str):
        words = [os.path.basename(word) for word in args.split()]
    for command in ARTIFACT_COMMANDS:
        if any(tuple(words[i : i + len(command)]) == command for i in range(len(words))):
            return command
    return None


def pytest_configure(config: pytest.Config) -> None:
    """In the unit run, starting a service or an artifact tool fails instead of making the loop slow."""
    if not config.getoption("--unit"):
        return
    patch = pytest.MonkeyPatch()
    config.add_cleanup(patch.undo)
    from pulse.devstack.broker import EmbeddedKafka

    patch.setattr(EmbeddedKafka, "up", _refuse("a Kafka broker"))
    try:
        from pyspark.sql import SparkSession

        patch.setattr(SparkSession.Builder, "getOrCreate", _refuse("a Spark session"))
    except ImportError:
        pass
    try:
        from playwright.sync_api import BrowserType

        patch.setattr(BrowserType, "launch", _refuse("a browser"))
    except ImportError:
        pass
    popen_init = subprocess.Popen.__init__

    def guarded_popen_init(self: subprocess.Popen, args: object, *more: object, **options: object) -> None:
        command = _artifact_command(args)
        if command is not None:
            _refuse(" ".join(command))()
        popen_init(self, args, *more, **options)  # type: ignore[arg-type]

    patch.setattr(subprocess.Popen, "__init__", guarded_popen_init)


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
    # The state stores' maintenance thread first: left to the session's stop, it can run once more after
    # Spark's environment is gone and warn "StateStore maintenance: SparkEnv not active".
    for query in session.streams.active:
        query.stop()
    session._jvm.org.apache.spark.sql.execution.streaming.state.StateStore.stop()
    session.stop()


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, jars_dir: Path) -> Iterator[object]:
    """A real broker with a SASL_SSL listener and generated CA and API keys (tests/kafka_secure.py)."""
    from tests.kafka_secure import start_secure_broker

    yield from start_secure_broker(tmp_path_factory.mktemp("sasl-home"), jars_dir)


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """True under `pytest --long`: fault tests scale up to their benchmark size."""
    return bool(request.config.getoption("--long"))
