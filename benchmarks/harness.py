"""The process harness of the benchmarks: a workspace per benchmark, a broker, and `pulse` children, run
from this checkout or from a baseline commit's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pulse.devstack.broker import free_port as any_free_port
from pulse.devstack.broker import free_port_pair as broker_ports
from pulse_core.settings import PulseSettings

REPO = Path(__file__).resolve().parents[1]
JARS = Path(os.environ.get("PULSE_JARS", str(REPO / ".pulse" / "jars")))
# The broker bundle plus Kafka's perf tools (ProducerPerformance).
KAFKA_CLASSPATH = os.pathsep.join(str(JARS / bundle / "*") for bundle in ("kafka", "tools"))
# Ports other people use on this machine: never bind them.
RESERVED_PORTS = {9092, 9093, 8501}


def log(message: str) -> None:
    """A timestamped progress line on stderr (the table goes to stdout)."""
    print(f"{datetime.now().strftime('%H:%M:%S')} [bench] {message}", file=sys.stderr, flush=True)


def free_port_pair() -> int:
    """A port P with P and P+1 free on loopback (broker and controller), never a reserved one."""
    return broker_ports(RESERVED_PORTS)


def free_port() -> int:
    """One free loopback port, never a reserved one."""
    return any_free_port(RESERVED_PORTS)


@dataclass
class Workspace:
    """One benchmark's own PULSE_HOME, lake and broker port, under /tmp."""

    home: Path
    port: int | None = None
    topic: str = PulseSettings.model_fields["kafka_topic"].default
    lake: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a `pulse` child: this workspace's settings, nothing inherited from PULSE_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        env |= {
            "PULSE_HOME": str(self.home),
            "PULSE_JARS": str(JARS),
            "PULSE_KAFKA_TOPIC": self.topic,
            "PYTHONUNBUFFERED": "1",
        }
        if self.port is not None:
            env["PULSE_KAFKA_BOOTSTRAP"] = self.bootstrap
        if self.lake is not None:
            env["PULSE_LAKE"] = str(self.lake)
        return env | extra


# The pipeline code a benchmark compares against in the same run: a git ref, checked out beside the repo.
BASELINE_REF_ENV = "PULSE_BENCH_BASELINE_REF"
# By default the design landed before delta-rs committed Gold (Spark MERGEs, session 3); the one before the
# driver-side hot path is 816eb79. An empty value skips the baseline.
BASELINE_REF = "46861ef"
# Where `start_pipeline` has the code under test write its progress log (`pulse.progress_log`), in `logs`.
PROGRESS_LOG = "progress.jsonl"


def baseline_ref() -> str | None:
    """The baseline git ref for this run: `PULSE_BENCH_BASELINE_REF`, else `BASELINE_REF`; None skips it."""
    return os.environ.get(BASELINE_REF_ENV, BASELINE_REF).strip() or None


def baseline_tree(ref: str) -> Path:
    """A checkout of `ref` (a git worktree under /tmp) whose `app` package a child can run instead of ours.

    Raises RuntimeError with git's message when the ref does not exist in this clone.
    """
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=REPO, capture_output=True, text=True
    )
    if commit.returncode != 0:
        raise RuntimeError(f"{BASELINE_REF_ENV}={ref}: not a commit in this clone ({commit.stderr.strip()})")
    path = Path(tempfile.gettempdir()) / f"pulse-baseline-{commit.stdout.strip()[:12]}"
    if not (path / "app").is_dir():
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, check=False, capture_output=True)
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--force", str(path), commit.stdout.strip()],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    return path


def pulse_cli(code: Path) -> tuple[list[str], str]:
    """The command that runs the `pulse` CLI of the checkout at `code`, and the PYTHONPATH that makes it
    import that checkout's code rather than the one installed in this venv.

    The package was `app` (run as `app.cli`) until 04dec10 moved it to `app/pulse`, beside `core/pulse_core`.
    """
    if (code / "app" / "pulse").is_dir():
        return [sys.executable, "-m", "pulse.cli"], os.pathsep.join(
            str(code / part) for part in ("app", "core")
        )
    return [sys.executable, "-m", "app.cli"], str(code)


@contextmanager
def workspace(name: str, keep: bool = False) -> Iterator[Workspace]:
    """A fresh folder under /tmp, removed afterwards unless `keep`."""
    home = Path(tempfile.mkdtemp(prefix=f"pulse-bench-{name}-", dir="/tmp"))
    try:
        yield Workspace(home=home, lake=home / "lake")
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def pulse(ws: Workspace, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real `pulse` CLI in a child process and return what it printed."""
    return python_module("pulse.cli", args, ws.env(**env), timeout)


def produce_as_fast_as_possible(
    ws: Workspace, events: int, seed: int, timeout: float, **env: str
) -> dict[str, Any]:
    """`pulse produce --events N --rate 0`; returns its summary, raising if any delivery failed."""
    summary_file = ws.home / f"produce-{seed}-{events}.json"
    done = checked(
        pulse(ws, "produce", "--events", str(events), "--rate", "0", "--seed", str(seed),
              "--summary-json", str(summary_file), timeout=timeout, **env),
        "pulse produce",
    )  # fmt: skip
    summary = json.loads(summary_file.read_text())
    if summary["failed"]:
        raise RuntimeError(
            f"pulse produce reported {summary['failed']} failed deliveries: {done.stdout[-1000:]}"
        )
    return summary


def checked(result: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    """Raise with the child's output when it failed."""
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@contextmanager
def broker(ws: Workspace, partitions: int = 3) -> Iterator[int]:
    """`pulse broker up` on a free port pair in this workspace, `pulse broker down` after. Yields its pid."""
    ws.port = free_port_pair()
    checked(
        pulse(ws, "broker", "up", "--port", str(ws.port), "--partitions", str(partitions)), "pulse broker up"
    )
    try:
        record = json.loads((ws.home / "kafka" / "broker.pid").read_text())
        yield int(record["pid"])
    finally:
        down = pulse(ws, "broker", "down", timeout=120)
        if down.returncode != 0:
            log(f"pulse broker down: {down.stdout} {down.stderr}")


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create one more topic on the benchmark's broker."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})  # no info chatter on exit
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        future.result(timeout=30)


def start_process(
    command: Sequence[str], env: dict[str, str], log_path: Path, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """A child in its own process group, writing stdout and stderr to `log_path`."""
    with log_path.open("wb") as out:
        return subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_live_load(env: dict[str, str], logs: Path, rate: float) -> subprocess.Popen[bytes]:
    """`pulse produce` streaming a live audience at `rate` events/s (seed 5) for up to two hours."""
    command = ["produce", "--duration", "7200", "--rate", str(rate), "--seed", "5"]
    return start_process([sys.executable, "-m", "pulse.cli", *command], env, logs / "produce.log")


def start_pipeline(
    env: dict[str, str], logs: Path, baseline: str | None, args: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """`pulse pipeline all` logging to `<logs>/pipeline.log`: today's code, or `baseline`'s (a git ref).

    Today's code also writes its progress log to `<logs>/progress.jsonl` (`PROGRESS_LOG`); a baseline's
    may predate the option, so only its log lines tell what it did (`pipeline_progress.baseline_records`).
    """
    code = baseline_tree(baseline) if baseline else REPO
    if not baseline:
        args = [*args, "--progress-log", str(logs / PROGRESS_LOG)]
    cli, pythonpath = pulse_cli(code)
    return start_process(
        [*cli, "pipeline", "all", *args], env | {"PYTHONPATH": pythonpath}, logs / "pipeline.log", cwd=code
    )


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 60) -> None:
    """Stop a child started by `start_process` (and its group): `sig` first, SIGKILL when it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def wait_for_line(path: Path, needle: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Wait until `needle` appears in the log at `path`; raise when `process` exits first or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"the process exited ({process.returncode}):\n{path.read_text()[-3000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"no {needle!r} in {path} after {timeout:.0f} s")


def python_module(
    module: str, args: Sequence[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """`python -m module args` from the repository root, its output captured as text."""
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_json_child(module: str, args: Sequence[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run `python -m module args` and parse the JSON object it prints last on stdout.

    Spark and deltalake work runs in such children: each gets a clean JVM or Rust runtime, and
    nothing forks a process that has already used deltalake.
    """
    done = python_module(module, args, env, timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{module} printed no JSON:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])
