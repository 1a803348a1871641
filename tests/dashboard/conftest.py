"""Fixture Gold lakes and an AppTest runner for the dashboard tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from testkit.gold_fixture import GoldFixture, simulate_gold, write_gold_fixture

APP = Path(__file__).resolve().parents[2] / "dashboard" / "pulse_dashboard" / "app.py"
DASHBOARD_VARIABLES = (
    "PULSE_ENV",
    "PULSE_LAKE",
    "PULSE_GOLD_SAS_TOKEN",
    "PULSE_STORAGE_ACCOUNT",
    "PULSE_STORAGE_ENDPOINT",
    "PULSE_STORAGE_USE_EMULATOR",
    "PULSE_DASHBOARD_REFRESH_SECONDS",
    "PULSE_DASHBOARD_CACHE_TTL_SECONDS",
    "PULSE_DASHBOARD_STALE_AFTER_SECONDS",
)
NOW = datetime.now(UTC)
HOURS = 2
VIDEOS = 4
SEED = 11


@pytest.fixture
def dashboard_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean dashboard environment whose lake is an empty folder; returns the lake root."""
    lake = tmp_path / "lake"
    lake.mkdir()
    for name in DASHBOARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PULSE_LAKE", str(lake))
    # Fixtures end at NOW, fixed when the suite starts; a long suite must not make them look stale.
    monkeypatch.setenv("PULSE_DASHBOARD_STALE_AFTER_SECONDS", "3600")
    return lake


@pytest.fixture(scope="session")
def gold_tables() -> dict:
    """The simulated Gold rows every fixture lake holds, as pandas frames, to compute expectations."""
    tables, _ = simulate_gold(now=NOW, hours=HOURS, videos=VIDEOS, seed=SEED)
    return {name: table.to_pandas() for name, table in tables.items()}


@pytest.fixture
def gold_lake(dashboard_env: Path) -> GoldFixture:
    """A fresh lake with 2 h x 4 videos of Gold ending now."""
    return write_gold_fixture(str(dashboard_env), now=NOW, hours=HOURS, videos=VIDEOS, seed=SEED)


@pytest.fixture
def run_app() -> Callable[[], AppTest]:
    """Run the dashboard script once with AppTest and return the rendered app."""

    def run() -> AppTest:
        app = AppTest.from_file(str(APP), default_timeout=60)
        app.run()
        assert not app.exception, [e.value for e in app.exception]
        return app

    return run


def metric_values(app: AppTest) -> dict[str, tuple[str, str]]:
    """Rendered KPIs: label -> (value, delta)."""
    return {metric.label: (metric.value, metric.delta) for metric in app.metric}


def charts(app: AppTest) -> list:
    """The Vega-Lite chart elements on the page."""
    return list(app.get("vega_lite_chart"))
