"""The JVM's CPU by kind of thread (benchmarks/jvm_threads.py), read from this machine's /proc."""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.jvm_threads import GC, JIT, KINDS, OTHER, TASKS, ThreadCpu, kind_of, thread_times


def test_hotspot_and_spark_thread_names_get_their_kind() -> None:
    # The names as /proc keeps them: cut to 15 characters.
    assert kind_of("C2 CompilerThre") == JIT
    assert kind_of("C1 CompilerThre") == JIT
    assert kind_of("Executor task l") == TASKS
    assert kind_of("Executor task i") == TASKS  # an idle one (Spark 4 renames it between tasks)
    assert kind_of("GC Thread#1") == GC
    assert kind_of("G1 Conc#0") == GC
    assert kind_of("stream executio") == OTHER
    assert kind_of("Thread-3") == OTHER


def test_this_process_main_thread_is_read_from_proc() -> None:
    # The main thread's id is the process's; pytest's has used CPU by now, never more than the process.
    pid = os.getpid()
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass
    name, seconds = thread_times(pid)[pid]
    assert name
    assert 0.0 < seconds <= time.process_time() + 0.05
    sampler = ThreadCpu()
    sampler.sample(pid)
    kinds = sampler.by_kind(pid)
    assert set(kinds) == set(KINDS)
    assert sum(kinds.values()) >= seconds
    assert sampler.busiest() == pid


def _stat(tid: int, name: str, user_ticks: int, system_ticks: int) -> str:
    # stat(5): pid (comm) state ppid pgrp session tty_nr tpgid flags, four fault counts, utime, stime, …
    return f"{tid} ({name}) S 1 1 1 0 -1 0 0 0 0 0 {user_ticks} {system_ticks} 0 0 20 0 1 0\n"


def test_names_with_spaces_and_parentheses_are_read_whole(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    threads = {11: ("C2 CompilerThre", 3 * ticks, ticks), 12: ("Executor task l", 2 * ticks, 0),
               13: ("odd (name) x", ticks, 0)}  # fmt: skip
    for tid, (name, user, system) in threads.items():
        folder = tmp_path / "4242" / "task" / str(tid)
        folder.mkdir(parents=True)
        (folder / "stat").write_text(_stat(tid, name, user, system))
    read = thread_times(4242, proc=tmp_path)
    assert read == {11: ("C2 CompilerThre", 4.0), 12: ("Executor task l", 2.0), 13: ("odd (name) x", 1.0)}
    assert {kind_of(name) for name, _ in read.values()} == {JIT, TASKS, OTHER}


def test_a_process_that_is_gone_has_no_threads(tmp_path: Path) -> None:
    assert thread_times(2**22 + 7, proc=tmp_path) == {}
    assert ThreadCpu().busiest() is None
