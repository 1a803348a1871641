"""Benchmark 4: the dashboard on the 24 h x 20 videos Gold fixture.

- Render: the real server (`python -m pulse_dashboard.serve`) in Chromium: first render (chart drawn),
  reloads, and the switch to the 24 h range. Baseline: the same Streamlit and browser drawing one
  line chart of the same size with no Gold read (benchmarks/assets/minimal_app.py), so the ratio is
  what Pulse adds over the framework's own floor.
- Reads: the last 24 h of each Gold table into pandas, deltalake (the dashboard's `read_gold`) against
  a Spark batch read of the same tables with the same filter (the alternative a user might pick), in turn
  over the rounds; the target holds at the quartiles (benchmarks.spread).
"""

from __future__ import annotations

import statistics
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
from benchmarks.result import Result, compared, compared_rounds, headline
from benchmarks.spread import Target, compare

NAME = "dashboard"
FULL = {"hours": 24, "videos": 20, "reloads": 3, "read_rounds": 5}
QUICK = {"hours": 24, "videos": 20, "reloads": 1, "read_rounds": 5}
READ_TARGET = Target(1.0, "lower")


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

        reads: dict[str, list[dict[str, Any]]] = {"spark": [], "deltalake": []}
        for round_no in range(size["read_rounds"]):
            log(f"dashboard: Gold reads, round {round_no + 1}/{size['read_rounds']}: Spark, then deltalake")
            for reader, rounds in reads.items():
                args = [reader, "--lake", lake, "--start", start]
                rounds.append(run_json_child("benchmarks.gold_reads", args, ws.env(), timeout=900))

    tables = list(fixture["rows"])

    def seconds(reader: str, tables: list[str]) -> list[float]:
        return [sum(one[table]["seconds"] for table in tables) for one in reads[reader]]

    verdict = compare(seconds("spark", tables), seconds("deltalake", tables), "lower", READ_TARGET)
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
            "candidate": statistics.median(one["session_s"] for one in reads["spark"]),
            "unit": "s",
        },
    ]
    for table in tables:
        label = f"read 24 h {table} ({fixture['rows'][table]:,} rows)"
        per_table = compare(seconds("spark", [table]), seconds("deltalake", [table]), "lower")
        rows.append(compared_rounds(label, per_table, "s"))
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
        **headline(
            verdict,
            {"label": "Spark batch read", "reads": reads["spark"]},
            {"label": "deltalake read_gold", "reads": reads["deltalake"]},
        ),
        target=f"{READ_TARGET} at the quartiles (no slower than Spark)",
        passed=verdict["met"],
        details={"browser_pulse": pulse_page, "browser_baseline": baseline, "fixture": fixture},
        notes=[
            "Render ratios are against a minimal Streamlit page drawing one chart of the same size "
            "(framework floor); they carry no target.",
            "Reads: Spark and deltalake in turn, round after round, each round a process of its own (one "
            "warm-up read, then one timed read of each table; Spark's session start apart); a round's "
            "figure is the three tables' total.",
            "Renders carry no target and run one server after the other: a first render is cold by "
            "definition, once per server.",
            "The 24 h switch is compared with the baseline's first render (no like-for-like page exists).",
        ],
        rows=rows,
    )
