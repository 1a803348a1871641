"""Start the dashboard: `streamlit run` over `app.py` with the server flags Pulse uses everywhere.

`pulse dashboard [--port P]` runs `python -m pulse_dashboard.serve` (the CLI does not import the
dashboard); the container image runs
`python -m pulse_dashboard.serve --address 0.0.0.0`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from pulse_core.settings import PulseSettings, load_settings

APP_SCRIPT = Path(__file__).resolve().with_name("app.py")
DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"


def streamlit_command(port: int, address: str = DEFAULT_ADDRESS) -> list[str]:
    """The `streamlit run` command line: headless, no usage statistics, no file watcher, no CORS relax."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--logger.level",
        "warning",
    ]


def dashboard_environment(settings: PulseSettings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the caller's, with the resolved Pulse settings made explicit."""
    env = dict(os.environ if base is None else base)
    env["PULSE_ENV"] = settings.env
    env["PULSE_HOME"] = str(settings.home)
    env["PULSE_LAKE"] = settings.lake_root
    return env


def run_dashboard(port: int, settings: PulseSettings, address: str = DEFAULT_ADDRESS) -> int:
    """Run the dashboard in the foreground until it stops or is interrupted.

    Args:
        port: TCP port to listen on.
        settings: Pulse settings; the lake the dashboard reads is `settings.lake_root`.
        address: Interface to bind; loopback unless told otherwise (the container binds 0.0.0.0).

    Returns:
        The Streamlit server's exit code (0 after Ctrl-C).
    """
    # A plain child process (no fork of this interpreter): deltalake's runtime does not survive a fork.
    process = subprocess.Popen(streamlit_command(port, address), env=dashboard_environment(settings))
    if threading.current_thread() is threading.main_thread():
        # As a container's PID 1 this process gets the stop signal: pass it on so Streamlit exits cleanly.
        signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m pulse_dashboard.serve [--port P] [--address A]`."""
    parser = argparse.ArgumentParser(prog="python -m pulse_dashboard.serve", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PULSE_DASHBOARD_PORT", DEFAULT_PORT)))
    parser.add_argument("--address", default=os.environ.get("PULSE_DASHBOARD_ADDRESS", DEFAULT_ADDRESS))
    args = parser.parse_args(argv)
    return run_dashboard(args.port, load_settings(), args.address)


if __name__ == "__main__":
    sys.exit(main())
