"""The JVM's CPU by kind of thread (benchmarks/jvm_threads.py), read from this machine's /proc."""

from __future__ import annotations

import os
import threading
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


def test_a_busy_thread_is_counted_under_its_own_name_and_kept_after_it_ends() -> None:
    def spin() -> None:
        # This thread's own CPU clock: the process's would count every other thread of the test run.
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass

    worker = threading.Thread(target=spin, name="Executor task launch worker")
    sampler = ThreadCpu()
    worker.start()
    native = worker.native_id
    assert native is not None
    seen = 0.0
    while worker.is_alive():
        sampler.sample(os.getpid())
        seen = thread_times(os.getpid()).get(native, ("", seen))[1]
        time.sleep(0.02)
    worker.join()
    kinds = sampler.by_kind(os.getpid())
    assert set(kinds) == set(KINDS)
    assert sum(kinds.values()) >= seen > 0.0
    assert sampler.busiest() == os.getpid()


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
