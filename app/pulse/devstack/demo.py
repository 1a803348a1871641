"""`pulse demo`: the whole live pipeline on the embedded stack, stopped by one Ctrl-C.

It brings the broker up, streams a live audience into it, runs bronze → silver → gold continuously
and serves the dashboard, each as its own process with its own log. Every few seconds it prints the
newest Gold numbers, so the terminal shows the pipeline is alive even without a browser.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pulse.devstack.broker import HOST, EmbeddedKafka, port_is_free
from pulse_core.progress import progress_from_history
from pulse_core.settings import PulseSettings

# How long the pipeline waits for the broker `pulse demo` starts alongside it.
BROKER_WAIT_S = 120


class DemoError(RuntimeError):
    """The demo could not start. The message says what to fix."""


@dataclass
class _Child:
    name: str
    process: subprocess.Popen
    log: Path


def _spawn(name: str, args: list[str], settings: PulseSettings, env: dict[str, str]) -> _Child:
    log = settings.logs_dir / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # our Ctrl-C handling stops them in order
        )
    return _Child(name, process, log)


def _stop(child: _Child, timeout: float = 150.0) -> None:
    if child.process.poll() is not None:
        return
    try:
        os.killpg(child.process.pid, signal.SIGINT)  # lets the pipeline stop its queries cleanly
        child.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()
    except ProcessLookupError:
        pass


def gold_headline(settings: PulseSettings, since: datetime | None = None) -> str | None:
    """One line with the newest minute of Gold: viewers, messages and events across videos; None before
    Gold has rows, or (with `since`) before a micro-batch committed to Gold at or after `since`."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        delta = DeltaTable(settings.table_path("gold", "video_activity"))
        table = delta.to_pyarrow_table()
        progress = progress_from_history(delta.history(20))
    except (TableNotFoundError, OSError):
        return None
    if table.num_rows == 0 or (since is not None and (progress is None or progress.committed_at < since)):
        return None
    rows = table.to_pylist()
    newest = max(row["window_start"] for row in rows)
    # The newest minute is still filling up; the one before it is complete.
    complete = sorted({row["window_start"] for row in rows})[-2:][0]
    last = [row for row in rows if row["window_start"] == complete]
    return (
        f"gold @ {complete:%H:%M} UTC: {len(last)} videos, "
        f"{sum(r['concurrent_viewers'] for r in last):,} concurrent viewers, "
        f"{sum(r['active_viewers'] for r in last):,} active, "
        f"{sum(r['message_count'] for r in last):,} messages, "
        f"{sum(r['event_count'] for r in last):,} events/min (newest window {newest:%H:%M})"
        + (
            f"; data as of {progress.newest_event_time:%H:%M:%S} UTC, "
            f"{progress.lag_seconds(datetime.now(UTC)):.0f} s behind"
            if progress
            else ""
        )
    )


def run_demo(
    settings: PulseSettings,
    *,
    kafka_port: int,
    dashboard_port: int,
    rate: float,
    echo: Callable[[str], None] = print,
    status_every_s: float = 15.0,
) -> None:
    """Start everything, print where to look, and stop it all on Ctrl-C."""
    started = time.monotonic()
    started_at = datetime.now(UTC)
    if not port_is_free(dashboard_port):
        raise DemoError(f"Port {dashboard_port} is in use: stop what runs there or pass --dashboard-port.")
    broker = EmbeddedKafka(settings.home, settings.jars_dir, echo=echo)
    started_broker = not broker.status().running
    env = {**os.environ, "PULSE_HOME": str(settings.home), "PULSE_KAFKA_BOOTSTRAP": f"{HOST}:{kafka_port}"}
    if settings.lake is not None:
        env["PULSE_LAKE"] = settings.lake
    # The pipeline starts its Spark session and the dashboard its server while the broker starts: the
    # pipeline waits for the broker and its topic before it reads Kafka.
    wait = ["--wait-for-kafka", str(BROKER_WAIT_S)]
    pipeline = _spawn("pipeline", ["pipeline", "all", *wait], settings, env)
    dashboard = _spawn("dashboard", ["dashboard", "--port", str(dashboard_port)], settings, env)
    try:
        state = broker.up(kafka_port, None, settings.kafka_topic, 3)
    except BaseException:
        for child in (dashboard, pipeline):
            _stop(child)
        raise
    producer = _spawn(
        "producer",
        ["produce", "--duration", "86400", "--rate", str(rate), "--hype-every", "120"],
        settings,
        env,
    )
    children = [producer, pipeline, dashboard]  # stopped in reverse: the dashboard first, the producer last
    echo("")
    echo("Pulse demo is running:")
    echo(f"  dashboard   http://{HOST}:{dashboard_port}")
    echo(f"  kafka       {state.bootstrap}  topic {settings.kafka_topic!r}")
    echo(f"  lake        {settings.lake_root}  (bronze, silver, gold Delta tables)")
    echo(f"  logs        {settings.logs_dir}/{{producer,pipeline,dashboard,kafka}}.log")
    echo("  Gold fills within about a minute. Press Ctrl-C once to stop everything.")
    echo("")
    try:
        first_number: float | None = None
        next_status = time.monotonic() + status_every_s
        next_poll = time.monotonic()
        while True:
            for child in children:
                if child.process.poll() is not None:
                    raise DemoError(
                        f"the {child.name} exited with code {child.process.returncode}; see {child.log}"
                    )
            now = time.monotonic()
            if first_number is None and now >= next_poll:
                # Until this run commits to Gold, look often, so its first numbers are reported when they
                # land (numbers from an earlier run do not count).
                next_poll = now + 2.0
                headline = gold_headline(settings, since=started_at)
                if headline:
                    first_number = now
                    echo(f"gold: first numbers {now - started:.0f} s after `pulse demo` started")
                    echo(headline)
                    next_status = now + status_every_s
            if now >= next_status:
                next_status += status_every_s
                echo(gold_headline(settings) or "gold: waiting for the first windows…")
            time.sleep(0.5)
    except KeyboardInterrupt:
        echo("\nStopping the demo…")
    finally:
        for child in reversed(children):
            _stop(child)
            echo(f"  stopped the {child.name}")
        if started_broker:
            echo("  " + broker.down())
        else:
            echo("  left the broker running (it was up before the demo)")
