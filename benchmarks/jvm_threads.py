"""A JVM's CPU by kind of thread, read from /proc: the JIT compiler, Spark's task threads, the garbage
collector, and the rest (the driver's own threads: py4j, planning, the stream thread, Kafka's and the
shuffle's clients).

Java Flight Recorder samples only Java threads, so `jvm_profile` never sees the JIT compiler. /proc counts
every thread. Over a keyed `--once` run of 26 s with one task slot, the JIT compiler took 24 s of CPU beside
10 s in the task threads (docs/scale.md, session 19): the work a second task slot on 2 cores competes with,
and a warm-up a long-lived executor pays once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

JIT = "JIT compiler"
TASKS = "task threads"
GC = "garbage collector"
OTHER = "other threads"
KINDS = (JIT, TASKS, GC, OTHER)
# (kind, the start of a thread's name as the kernel keeps it: 15 characters)
NAMES = (
    (JIT, "C1 CompilerThre"),
    (JIT, "C2 CompilerThre"),
    (TASKS, "Executor task"),  # "… launch worker" while it runs a task, "… idle worker" between
    (GC, "GC Thread"),
    (GC, "G1 "),
    (GC, "VM Thread"),  # the safepoint operations, the collector's pauses among them
)
_TICKS = os.sysconf("SC_CLK_TCK")
_COMM = re.compile(r"^\d+ \((.*)\) ")


def kind_of(name: str) -> str:
    """The kind (`KINDS`) of a thread called `name` (the kernel's name, cut to 15 characters)."""
    return next((kind for kind, prefix in NAMES if name.startswith(prefix)), OTHER)


def thread_times(pid: int, proc: Path = Path("/proc")) -> dict[int, tuple[str, float]]:
    """Each live thread of `pid`: its name and the CPU seconds it has used (user and system)."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(proc / str(pid) / "task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = (proc / str(pid) / "task" / tid / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        named = _COMM.match(stat)
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the name: state is field 3 of stat(5); utime and stime are 14 and 15.
        out[int(tid)] = (named[1] if named else "", (int(fields[11]) + int(fields[12])) / _TICKS)
    return out


class ThreadCpu:
    """The CPU each thread of a process has used, sampled while it runs: a thread that ends keeps the
    seconds of its last sample (sample often; a short-lived thread between two samples is missed)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int], tuple[str, float]] = {}

    def sample(self, pid: int) -> None:
        for tid, named in thread_times(pid).items():
            self._seen[(pid, tid)] = named

    def by_kind(self, pid: int) -> dict[str, float]:
        """CPU seconds of `pid`'s threads per kind, every kind present (0.0 when none ran)."""
        kinds = dict.fromkeys(KINDS, 0.0)
        for (of, _), (name, seconds) in self._seen.items():
            if of == pid:
                kinds[kind_of(name)] += seconds
        return {kind: round(seconds, 2) for kind, seconds in kinds.items()}

    def busiest(self) -> int | None:
        """The sampled process that used the most CPU (the Spark JVM, beside the launcher's short one)."""
        totals: dict[int, float] = {}
        for (pid, _), (_, seconds) in self._seen.items():
            totals[pid] = totals.get(pid, 0.0) + seconds
        return max(totals, key=totals.__getitem__) if totals else None
