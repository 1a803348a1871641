"""The machine around a benchmark: quiet enough to start, and what else ran while it measured.

- **Before.** A benchmark starts when the 1-minute load average is at most `BUSY_LOAD`. Above it, the run
  waits up to `SETTLE_S` for the load to fall. Before the run's first benchmark, a load that does not fall
  makes the machine busy. Before a later one, the load still carries the previous benchmark's own work (the
  1-minute average takes a minute to forget it), so there the machine is busy only if another process is
  using more than `OTHER_CPU_PERCENT` of a core right then.
- **During.** A thread samples the load average and every process's CPU time. A process of another run
  that used more than `OTHER_CPU_PERCENT` of a core over the benchmark makes its result busy too. The
  benchmark's own processes are its process tree and whatever carries this run's `RUN_ENV` (a broker that
  `pulse broker up` leaves running is no longer a descendant, but it inherited the variable).

A busy machine stops the run unless it is given `--allow-busy`; then its results are marked busy and never
say "met".
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

BUSY_LOAD = 1.0
SETTLE_S = 60.0
POLL_S = 5.0  # the kernel recomputes the load average every 5 s
OTHER_CPU_PERCENT = 10.0  # of one core, averaged over the benchmark
SAMPLE_S = 2.0
RUN_ENV = "BENCHMARKS_RUN_ID"

Load = tuple[float, float, float]


@dataclass(frozen=True)
class CpuReading:
    """One process's CPU time so far (all its threads, not its children)."""

    pid: int
    started: float  # epoch seconds
    name: str
    command: str
    cpu_s: float
    ours: bool

    @property
    def key(self) -> tuple[int, float]:
        return self.pid, self.started


class ProcessTable:
    """Reads every process's CPU time from /proc (psutil), telling this run's own processes apart."""

    def __init__(self) -> None:
        self._marked: dict[tuple[int, float], bool] = {}

    def __call__(self) -> list[CpuReading]:
        me, run_id = os.getpid(), os.environ.get(RUN_ENV)
        processes = list(psutil.process_iter(["pid", "ppid", "name", "cmdline", "cpu_times", "create_time"]))
        parents = {p.info["pid"]: p.info["ppid"] for p in processes}
        readings = []
        for process in processes:
            info = process.info
            if info["cpu_times"] is None or info["create_time"] is None:
                continue
            key = info["pid"], info["create_time"]
            ours = self._ours(process, key, me, parents, run_id)
            readings.append(
                CpuReading(
                    pid=info["pid"],
                    started=info["create_time"],
                    name=info["name"] or "?",
                    command=" ".join(info["cmdline"] or [])[:160],
                    cpu_s=info["cpu_times"].user + info["cpu_times"].system,
                    ours=ours,
                )
            )
        return readings

    def _ours(
        self,
        process: psutil.Process,
        key: tuple[int, float],
        me: int,
        parents: dict[int, int],
        run_id: str | None,
    ) -> bool:
        """Whether a process is this run's. Once seen as ours it stays ours: a child's JVM that outlives
        its parent for a moment is reparented, and then (a zombie) shows neither its parent nor its
        environment, yet its CPU time is still this run's work."""
        if self._marked.get(key):
            return True
        if _descends(key[0], me, parents):
            self._marked[key] = True
        elif key not in self._marked:
            self._marked[key] = self._carries(process, run_id)
        return self._marked[key]

    @staticmethod
    def _carries(process: psutil.Process, run_id: str | None) -> bool:
        if run_id is None:
            return False
        try:
            return process.environ().get(RUN_ENV) == run_id
        except (psutil.Error, OSError):
            return False


def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = set()
    while pid and pid not in seen:
        if pid == ancestor:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False


@dataclass
class Probes:
    """What the conditions are read with; the tests give their own."""

    load: Callable[[], Load] = os.getloadavg
    processes: Callable[[], list[CpuReading]] = field(default_factory=ProcessTable)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], float] = time.time


def cpu_percent(
    first: list[CpuReading], last: list[CpuReading], seconds: float, since: float
) -> list[dict[str, Any]]:
    """Other runs' processes that used more than `OTHER_CPU_PERCENT` of a core between two readings.

    A process missing from `first` counts from zero if it started after `since` (epoch seconds).
    """
    before = {reading.key: reading.cpu_s for reading in first}
    hogs = []
    for reading in last:
        if reading.ours:
            continue
        base = before.get(reading.key, 0.0 if reading.started >= since else None)
        if base is None or seconds <= 0:
            continue
        percent = 100 * (reading.cpu_s - base) / seconds
        if percent > OTHER_CPU_PERCENT:
            hogs.append(
                {
                    "pid": reading.pid,
                    "name": reading.name,
                    "command": reading.command,
                    "cpu_percent": round(percent),
                }
            )
    return sorted(hogs, key=lambda hog: -hog["cpu_percent"])


def describe(hogs: list[dict[str, Any]], most: int = 3) -> str:
    """`java (pid 123) 95% of a core, …` for a message."""
    return ", ".join(f"{h['name']} (pid {h['pid']}) {h['cpu_percent']}% of a core" for h in hogs[:most])


def busiest_now(probes: Probes, seconds: float = POLL_S) -> list[dict[str, Any]]:
    """Other runs' processes above `OTHER_CPU_PERCENT` over the next `seconds`."""
    since, began, first = probes.now(), probes.clock(), probes.processes()
    probes.sleep(seconds)
    return cpu_percent(first, probes.processes(), probes.clock() - began, since)


@dataclass
class Start:
    """The machine when a benchmark started: the load first seen, the load it started at, the wait, and
    why the machine is busy (None when it is quiet)."""

    first_load: Load
    load: Load
    waited_s: float
    busy: str | None = None
    note: str | None = None
    others: list[dict[str, Any]] = field(default_factory=list)


def settle(probes: Probes, first: bool, say: Callable[[str], None] = lambda _: None) -> Start:
    """Wait up to `SETTLE_S` for the 1-minute load average to fall to `BUSY_LOAD`, and say whether the
    machine is busy (see the module docstring for the rule before the first benchmark and a later one)."""
    began = probes.clock()
    first_load = load = probes.load()
    if load[0] > BUSY_LOAD:
        say(f"the 1-minute load average is {load[0]:.2f}: waiting up to {SETTLE_S:.0f} s for {BUSY_LOAD:g}")
    while load[0] > BUSY_LOAD and probes.clock() - began < SETTLE_S:
        probes.sleep(POLL_S)
        load = probes.load()
    waited = round(probes.clock() - began, 1)
    if load[0] <= BUSY_LOAD:
        return Start(first_load, load, waited)
    others = busiest_now(probes)
    seen = f"the 1-minute load average was {first_load[0]:.2f} and still {load[0]:.2f} after {waited:.0f} s"
    using = f"; other processes using the CPU: {describe(others)}" if others else ""
    if first:
        return Start(first_load, load, waited, busy=f"{seen} (above {BUSY_LOAD:g}){using}", others=others)
    if others:
        return Start(first_load, load, waited, busy=f"{seen}{using}", others=others)
    note = f"{seen}: the previous benchmark's tail, no other process above {OTHER_CPU_PERCENT:g}% of a core"
    return Start(first_load, load, waited, note=note)


class Watch:
    """Samples the load average and every process's CPU time in a thread while a benchmark runs."""

    def __init__(self, probes: Probes, interval_s: float = SAMPLE_S) -> None:
        self.probes = probes
        self.interval_s = interval_s
        self.loads: list[Load] = []
        self._first: list[CpuReading] = []
        self._seen: dict[tuple[int, float], CpuReading] = {}
        self._since = 0.0
        self._began = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Watch:
        self._since, self._began = self.probes.now(), self.probes.clock()
        self._first = self.probes.processes()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="conditions", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        self.loads.append(self.probes.load())
        for reading in self.probes.processes():
            self._seen[reading.key] = reading

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def stop(self) -> dict[str, Any]:
        """Stop sampling; the load during the run and the other processes above the threshold."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sample()
        seconds = self.probes.clock() - self._began
        one_minute = [load[0] for load in self.loads]
        return {
            "seconds": round(seconds, 1),
            "load_1m": {
                "samples": len(one_minute),
                "min": round(min(one_minute), 2),
                "median": round(statistics.median(one_minute), 2),
                "max": round(max(one_minute), 2),
            },
            "other_processes": cpu_percent(self._first, list(self._seen.values()), seconds, self._since),
        }


def record(start: Start, during: dict[str, Any], allow_busy: bool) -> dict[str, Any]:
    """The `conditions` of a result: before, during, and whether (and why) it is busy."""
    reasons = [f"at the start: {start.busy}"] if start.busy else []
    if during["other_processes"]:
        reasons.append(f"during the run: other processes used the CPU: {describe(during['other_processes'])}")
    return {
        "busy": bool(reasons),
        "busy_reasons": reasons,
        "allow_busy": allow_busy,
        "load_before": {
            "first_seen": [round(x, 2) for x in start.first_load],
            "at_start": [round(x, 2) for x in start.load],
            "waited_s": start.waited_s,
            **({"note": start.note} if start.note else {}),
        },
        "load_during": during["load_1m"],
        "measured_s": during["seconds"],
        "other_processes": during["other_processes"],
        "rules": {
            "start_load_1m_at_most": BUSY_LOAD,
            "settle_s": SETTLE_S,
            "other_process_cpu_percent_at_most": OTHER_CPU_PERCENT,
        },
    }
