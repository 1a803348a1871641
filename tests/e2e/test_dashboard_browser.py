"""The real `streamlit run` server (started through `pulse_dashboard.serve`), driven in Debian's Chromium.

The page must show the KPIs and the charts, refresh itself, and leave a screenshot in the test's
output folder. Timings (first render, filter change, auto-refresh) are written next to it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.browser import CHROMIUM as BENCH_CHROMIUM
from benchmarks.browser import CHROMIUM_ARGS
from pulse.devstack.broker import free_port
from testkit.gold_fixture import write_gold_fixture

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(BENCH_CHROMIUM)
REFRESH_SECONDS = 2
# The 24 h range is drawn: its caption spans a day, nothing is left over from the previous run, and the
# peak KPI has no change (the fixture holds no day before).
SETTLED_ON_A_DAY = """() =>
    [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some(e => /^Showing .* (\\d\\d:\\d\\d) to \\1 UTC/.test(e.innerText))
    && document.querySelectorAll('[data-stale="true"]').length === 0
    && [...document.querySelectorAll('[data-testid="stMetric"]')]
        .some(e => e.innerText.startsWith('Peak messages')
                   && !e.querySelector('[data-testid="stMetricDelta"]'))"""


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    log: Path


def _health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310
            return response.read().decode()
    except OSError:
        return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m pulse_dashboard.serve` on a free port over a 24 h x 20 videos Gold fixture."""
    folder = tmp_path_factory.mktemp("dashboard-server")
    lake = folder / "lake"
    write_gold_fixture(str(lake), now=datetime.now(UTC), hours=24, videos=20, seed=42)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PULSE_") or key in ("PULSE_JARS",)
    }
    env |= {
        "PULSE_HOME": str(folder / "home"),
        "PULSE_LAKE": str(lake),
        "PULSE_DASHBOARD_REFRESH_SECONDS": str(REFRESH_SECONDS),
    }
    log = folder / "streamlit.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse_dashboard.serve", "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _health(url) != "ok":
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not become healthy: {log.read_text()}")
            time.sleep(0.3)
        yield Server(url, port, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_health_endpoint_answers_the_image_healthcheck(server: Server) -> None:
    assert _health(server.url) == "ok"
    dockerfile = (REPO / "dashboard" / "Dockerfile").read_text().replace("\\\n", " ")
    (health,) = re.findall(r"HEALTHCHECK .*?CMD (\[.*\])", dockerfile)
    command = [part.replace("8501", str(server.port)) for part in json.loads(health)]
    command[0] = sys.executable
    assert subprocess.run(command, timeout=10, check=False).returncode == 0, shlex.join(command)
    closed = [part.replace(str(server.port), str(free_port())) for part in command]
    assert subprocess.run(closed, capture_output=True, timeout=10, check=False).returncode != 0


def _caption(page: object, prefix: str) -> str:
    texts = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()  # type: ignore[attr-defined]
    return next((text for text in texts if text.startswith(prefix)), "")


def test_kpis_and_charts_render_in_chromium(server: Server, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: `scripts/install-chromium.sh` (make setup) installs it where apt works"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    timings: dict[str, float] = {}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # A chart spec Vega cannot draw still leaves its canvas on the page, empty: the console says.
            errors: list[str] = []
            page.on(
                "console", lambda message: errors.append(message.text) if message.type == "error" else None
            )
            started = time.monotonic()
            page.goto(server.url, wait_until="domcontentloaded")
            chart = page.locator('[data-testid="stVegaLiteChart"]').first
            chart.locator("canvas, svg").first.wait_for(state="visible", timeout=60_000)
            timings["first_render_s"] = time.monotonic() - started
            metrics = page.locator('[data-testid="stMetric"]')
            assert metrics.count() == 7
            values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
            assert len(values) == 7
            assert all(re.search(r"\d", value) for value in values), values
            assert "Concurrent viewers now" in metrics.first.inner_text()
            assert page.locator('[data-testid="stException"]').count() == 0

            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            # Auto-refresh: the fragment reruns by itself and re-checks freshness.
            first_check = _caption(page, "Newest Gold window")
            assert first_check
            started = time.monotonic()
            page.wait_for_function(
                """(before) => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                     .some(e => e.innerText.startsWith('Newest Gold window') && e.innerText !== before)""",
                arg=first_check,
                timeout=(REFRESH_SECONDS + 20) * 1000,
            )
            timings["auto_refresh_observed_after_s"] = time.monotonic() - started

            # A filter change re-reads Gold for the whole day (20 videos) and redraws.
            started = time.monotonic()
            page.get_by_text("Last 24 h", exact=True).click()
            page.wait_for_function(SETTLED_ON_A_DAY, timeout=60_000)
            chart.locator("canvas, svg").first.wait_for(state="visible", timeout=60_000)
            timings["switch_to_24h_s"] = time.monotonic() - started
            page.screenshot(path=str(tmp_path / "dashboard-24h.png"), full_page=True)
            for tab in ("Viewers", "Chat"):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(1_000)
            vega_errors = [error for error in errors if "TypeError" in error or "vega" in error.lower()]
            assert vega_errors == [], vega_errors[:3]
        finally:
            browser.close()
    shot = tmp_path / "dashboard.png"
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=2))
    print(f"\ndashboard timings (24 h x 20 videos): {timings}; screenshots in {tmp_path}")
