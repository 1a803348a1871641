"""Shared pieces of the benchmarks: environment, broker, processes, sampling and the result record."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from pulse.local.broker import free_port_pair as broker_ports

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
JARS = Path(os.environ.get("PULSE_JARS", str(REPO / ".pulse" / "jars")))
# The broker bundle plus Kafka's perf tools (ProducerPerformance).
KAFKA_CLASSPATH = os.pathsep.join(str(JARS / bundle / "*") for bundle in ("kafka", "tools"))
# Ports other people use on this machine: never bind them.
RESERVED_PORTS = {9092, 9093, 8501}


def log(message: str) -> None:
    """A timestamped progress line on stderr (the table goes to stdout)."""
    print(f"{datetime.now().strftime('%H:%M:%S')} [bench] {message}", file=sys.stderr, flush=True)


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "total_memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def free_port_pair() -> int:
    """A port P with P and P+1 free on loopback (broker and controller), never a reserved one."""
    return broker_ports(RESERVED_PORTS)


def free_port() -> int:
    """One free loopback port, never a reserved one."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


@dataclass
class Workspace:
    """One benchmark's own PULSE_HOME, lake and broker port, under /tmp."""

    home: Path
    port: int | None = None
    topic: str = "user-interactions"
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
    return subprocess.run(
        [sys.executable, "-m", "pulse.cli", *args],
        cwd=REPO,
        env=ws.env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
    """`pulse local up` on a free port pair in this workspace, `pulse local down` after. Yields its pid."""
    ws.port = free_port_pair()
    checked(
        pulse(ws, "local", "up", "--port", str(ws.port), "--partitions", str(partitions)), "pulse local up"
    )
    try:
        record = json.loads((ws.home / "kafka" / "broker.pid").read_text())
        yield int(record["pid"])
    finally:
        down = pulse(ws, "local", "down", timeout=120)
        if down.returncode != 0:
            log(f"pulse local down: {down.stdout} {down.stderr}")


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
    """`pulse pipeline all` logging to `<logs>/pipeline.log`: today's code, or `baseline`'s (a git ref)."""
    code = baseline_tree(baseline) if baseline else REPO
    return start_process(
        [sys.executable, "-m", "pulse.cli", "pipeline", "all", *args],
        env | {"PYTHONPATH": str(code)},
        logs / "pipeline.log",
        cwd=code,
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


def tree_rss(pid: int) -> int:
    """RSS of a process and all its descendants, in bytes (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in processes:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total


@dataclass
class RssSampler:
    """Samples the RSS (children included) of named processes every `interval_s` in a thread."""

    pids: dict[str, int]
    interval_s: float = 0.5
    peaks: dict[str, int] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, pid in list(self.pids.items()):
                rss = tree_rss(pid)
                if rss:
                    self.first.setdefault(name, rss)
                    self.peaks[name] = max(self.peaks.get(name, 0), rss)
            self.samples += 1
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation, or None on no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, p50, p95, p99 and max, rounded to milliseconds."""

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {
        "count": len(values),
        "mean": r(statistics.fmean(values)) if values else None,
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values)) if values else None,
    }


BATCH_LINE = re.compile(
    r"^(\d\d:\d\d:\d\d) (bronze|pipeline) batch (\d+): ([\d,]+) rows in .*?\(([\d.]+) s\)"
    r"(?:, (\d+) spark jobs)?.*$"
)
CAUGHT_UP = re.compile(r"(all|bronze|silver|gold): caught up in ([\d.]+) s")


def batch_durations(pipeline_log: str) -> dict[str, dict[str, Any]]:
    """Per stage: the micro-batch durations and rows in, parsed from the pipeline's log lines."""
    stages: dict[str, dict[str, list[float]]] = {}
    for line in pipeline_log.splitlines():
        match = BATCH_LINE.match(line.strip())
        if match:
            stage = stages.setdefault(match[2], {"seconds": [], "rows": [], "jobs": []})
            stage["seconds"].append(float(match[5]))
            stage["rows"].append(float(match[4].replace(",", "")))
            if match[6]:
                stage["jobs"].append(float(match[6]))
    return {
        name: {
            "batches": len(data["seconds"]),
            "rows_in_total": int(sum(data["rows"])),
            "batch_seconds": summary_stats(data["seconds"]),
            "spark_jobs_per_batch": summary_stats(data["jobs"]) if data["jobs"] else None,
        }
        for name, data in stages.items()
    }


@dataclass
class Result:
    """One benchmark's record, written to `benchmarks/results/<name>.json`.

    `ratio` is candidate / baseline for the headline metric; `better` says which direction is good.
    """

    name: str
    quick: bool
    parameters: dict[str, Any]
    metric: str
    unit: str
    better: str  # "higher" or "lower"
    baseline: dict[str, Any]
    candidate: dict[str, Any]
    ratio: float | None
    target: str
    passed: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # extra table lines: label, figures, ratio
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    wall_seconds: float = 0.0
    error: str | None = None

    def to_json(self, machine: dict[str, Any]) -> str:
        body = {
            "name": self.name,
            "timestamp": self.started,
            "quick": self.quick,
            "machine": machine,
            "parameters": self.parameters,
            "metric": self.metric,
            "unit": self.unit,
            "better": self.better,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "target": self.target,
            "pass": self.passed,
            "rows": self.rows,
            "details": self.details,
            "notes": self.notes,
            "wall_seconds": round(self.wall_seconds, 1),
            "error": self.error,
        }
        return json.dumps(body, indent=2, default=str) + "\n"


def ratio(candidate: float | None, baseline: float | None) -> float | None:
    """candidate / baseline, or None when either is missing or the baseline is zero."""
    if candidate is None or not baseline:
        return None
    return candidate / baseline


def run_json_child(module: str, args: Sequence[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run `python -m module args` and parse the JSON object it prints last on stdout.

    Spark and deltalake work runs in such children: each gets a clean JVM or Rust runtime, and
    nothing forks a process that has already used deltalake.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{module} printed no JSON:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def now_s() -> float:
    """Monotonic seconds."""
    return time.monotonic()


def failed_result(name: str, quick: bool, error: str) -> Result:
    """The record of a benchmark that could not finish: no figures, the error kept."""
    return Result(
        name=name,
        quick=quick,
        parameters={},
        metric="",
        unit="",
        better="",
        baseline={},
        candidate={},
        ratio=None,
        target="",
        passed=None,
        error=error[-2000:],
    )
