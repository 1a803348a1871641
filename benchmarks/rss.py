"""Resident memory of benchmarked processes: one reading, or a sampler thread keeping peaks."""

from __future__ import annotations

import threading
from contextlib import suppress
from dataclasses import dataclass, field

import psutil


def own_rss(pid: int) -> int:
    """RSS of one process alone (a pipeline's Python driver without its Spark JVM), in bytes (0 once it
    is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


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
    """Samples the RSS (children included) of named processes every `interval_s` in a thread; `own_peaks`
    keeps each process's own peak without its children (a pipeline's Python driver, without its JVM)."""

    pids: dict[str, int]
    interval_s: float = 0.5
    peaks: dict[str, int] = field(default_factory=dict)
    own_peaks: dict[str, int] = field(default_factory=dict)
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
                    self.own_peaks[name] = max(self.own_peaks.get(name, 0), own_rss(pid))
            self.samples += 1
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
