"""Benchmark 4: the dashboard on the 24 h x 20 videos Gold fixture.

- Render: the real server (`python -m pulse_dashboard.serve`) in Chromium: first render (chart drawn),
  reloads, and the switch to the 24 h range. Baseline: the same Streamlit and browser drawing one
  line chart of the same size with no Gold read (benchmarks/assets/minimal_app.py), so the ratio is
  what Pulse adds over the framework's own floor.
- Reads: the last 24 h of each Gold table into pandas, deltalake (the dashboard's `read_gold`) against
  a Spark batch read of the same tables with the same filter (the alternative a user might pick).
"""

from __future__ import annotations

import sys
import time
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from benchmarks.harness import (
    REPO,
    Workspace,
    free_port,
    log,
    run_json_child,
    start_process,
    stop_process,
    workspace,
)
from benchmarks.result import Result, compared, ratio

NAME = "dashboard"
FULL = {"hours": 24, "videos": 20, "reloads": 3, "read_repeats": 5}
QUICK = {"hours": 24, "videos": 20, "reloads": 1, "read_repeats": 2}


def wait_healthy(url: str, process, timeout: float = 90) -> None:
    """Until Streamlit's health endpoint answers ok."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:  # noqa: S310
                if response.read().decode() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not become healthy in {timeout:.0f} s")


def browse(ws: Workspace, command: list[str], label: str, pulse: bool, reloads: int) -> dict[str, Any]:
    """Start one Streamlit server, time it in the browser, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = ws.env(PULSE_DASHBOARD_REFRESH_SECONDS="60")
    server = start_process(
        [*command, "--port", str(port)] if pulse else [*command, str(port)], env, ws.home / f"{label}.log"
    )
    try:
        wait_healthy(url, server)
        args = [url, "--reloads", str(reloads)] + (["--pulse"] if pulse else [])
        return run_json_child("benchmarks.browser", ["measure", *args], env, timeout=600)
    finally:
        stop_process(server, timeout=20)


def run(quick: bool) -> Result:
    """Fixture, browser timings for Pulse and the baseline page, then deltalake and Spark reads."""
    size = QUICK if quick else FULL
    with workspace(NAME) as ws:
        lake = str(ws.lake)
        log("dashboard: writing the 24 h x 20 videos fixture")
        fixture = run_json_child("benchmarks.gold_reads", ["fixture", "--lake", lake], ws.env(), timeout=600)
        start = (datetime.fromisoformat(fixture["last_window"]) - timedelta(hours=24)).isoformat()

        log("dashboard: baseline page (Streamlit, one chart, no Gold) in Chromium")
        minimal = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "benchmarks" / "assets" / "minimal_app.py"),
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
            "--server.address",
            "127.0.0.1",
            "--server.port",
        ]
        baseline = browse(ws, minimal, "minimal", pulse=False, reloads=size["reloads"])
        log(f"  baseline: {baseline}")
        log("dashboard: Pulse dashboard in Chromium")
        pulse_page = browse(
            ws, [sys.executable, "-m", "pulse_dashboard.serve"], "pulse", pulse=True, reloads=size["reloads"]
        )
        log(f"  pulse: {pulse_page}")

        log("dashboard: Gold reads, deltalake then Spark")
        args = ["--lake", lake, "--start", start, "--repeats", str(size["read_repeats"])]
        delta_reads = run_json_child("benchmarks.gold_reads", ["deltalake", *args], ws.env(), timeout=600)
        spark_reads = run_json_child("benchmarks.gold_reads", ["spark", *args], ws.env(), timeout=900)
        log(f"  deltalake: {delta_reads}\n  spark: {spark_reads}")

    tables = list(fixture["rows"])
    delta_total = sum(delta_reads[t]["median_s"] for t in tables)
    spark_total = sum(spark_reads[t]["median_s"] for t in tables)
    read_ratio = ratio(delta_total, spark_total)
    reload_pulse = min(pulse_page["reload_s"]) if pulse_page["reload_s"] else None
    reload_base = min(baseline["reload_s"]) if baseline["reload_s"] else None
    first_render = round(baseline["first_render_s"], 2), round(pulse_page["first_render_s"], 2)
    switch_to_24h = round(pulse_page["switch_to_24h_s"], 2)
    rows = [
        compared("first render (chart drawn)", *first_render, "s"),
        compared("refresh: page reload (best)", reload_base, reload_pulse, "s"),
        compared("refresh: switch to 24 h (re-read + redraw)", first_render[0], switch_to_24h, "s"),
        {
            "label": "Spark session start (a Spark reader's, once)",
            "candidate": spark_reads["session_s"],
            "unit": "s",
        },
    ]
    for table in tables:
        label = f"read 24 h {table} ({delta_reads[table]['rows']:,} rows)"
        rows.append(compared(label, spark_reads[table]["median_s"], delta_reads[table]["median_s"], "s"))
    return Result(
        name=NAME,
        quick=quick,
        parameters={
            **size,
            "fixture_rows": fixture["rows"],
            "browser": "Debian chromium, headless, 1600x1000",
        },
        metric="Gold read, 24 h, 3 tables",
        unit="s",
        better="lower",
        baseline={"label": "Spark batch read", "value": round(spark_total, 3), "reads": spark_reads},
        candidate={"label": "deltalake read_gold", "value": round(delta_total, 3), "reads": delta_reads},
        ratio=read_ratio,
        target="<= 1.0x (no slower than Spark)",
        passed=read_ratio is not None and read_ratio <= 1.0,
        details={"browser_pulse": pulse_page, "browser_baseline": baseline, "fixture": fixture},
        notes=[
            "Render ratios are against a minimal Streamlit page drawing one chart of the same size "
            "(framework floor); they carry no target.",
            "Read times are warm medians and exclude the Spark session start, reported separately.",
            "The 24 h switch is compared with the baseline's first render (no like-for-like page exists).",
        ],
        rows=rows,
    )
