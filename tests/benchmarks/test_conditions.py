"""A busy machine cannot fool the benchmarks: a run started under load is refused, `--allow-busy` runs and
marks the result busy, and a busy result never says met."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from benchmarks import conditions, run
from benchmarks.conditions import CpuReading, Probes, ProcessTable, Watch, cpu_percent, settle
from benchmarks.report import rows_of, table_from_files
from benchmarks.result import Result

OTHER_JAVA = 4242


class FakeMachine:
    """A load average that follows a script, processes with scripted CPU time, and a clock that only
    moves when something sleeps: a minute's wait takes no time."""

    def __init__(self, loads: list[float], other_java_cores: float = 0.0) -> None:
        self.loads = loads
        self.other_java_cores = other_java_cores
        self.seconds = 0.0

    def load(self) -> conditions.Load:
        one = self.loads.pop(0) if len(self.loads) > 1 else self.loads[0]
        return one, one, one

    def sleep(self, seconds: float) -> None:
        self.seconds += seconds

    def processes(self) -> list[CpuReading]:
        return [
            CpuReading(1, 0.0, "systemd", "/sbin/init", 1.0, ours=False),
            CpuReading(os.getpid(), 0.0, "python", "benchmarks.run", 100 * self.seconds, ours=True),
            CpuReading(
                OTHER_JAVA, 0.0, "java", "java -cp spark", self.other_java_cores * self.seconds, ours=False
            ),
        ]

    def probes(self) -> Probes:
        return Probes(
            load=self.load,
            processes=self.processes,
            sleep=self.sleep,
            clock=lambda: self.seconds,
            now=lambda: 1_000_000 + self.seconds,
        )


def _result(passed: bool | None = True) -> Result:
    return Result(
        name="fake", quick=True, parameters={}, metric="events/s", unit="events/s", better="higher",
        baseline={"label": "them", "value": 1.0}, candidate={"label": "us", "value": 2.0}, ratio=2.0,
        target=">= 1.0x", passed=passed,
        rows=[{"label": "row", "baseline": 1.0, "candidate": 2.0, "ratio": 2.0, "target": ">= 1x",
               "pass": True}],
    )  # fmt: skip


@pytest.fixture
def fake_benchmark(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """`benchmarks.run` with one benchmark, `fake`, that records that it ran and says it met its target."""
    ran: list[bool] = []
    module = types.ModuleType("fake_benchmark")
    module.NAME = "fake"  # type: ignore[attr-defined]

    def run_fake(quick: bool) -> Result:
        ran.append(quick)
        return _result()

    module.run = run_fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_benchmark", module)
    monkeypatch.setattr(run, "BENCHMARKS", {"fake": "fake_benchmark"})
    monkeypatch.setenv(conditions.RUN_ENV, "test-run")
    return ran


def test_a_run_started_under_load_is_refused_and_says_why(
    fake_benchmark: list[bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = FakeMachine([3.2], other_java_cores=0.9)
    status = run.main(["--quick", "--results", str(tmp_path)], probes=machine.probes())

    assert status == run.REFUSED
    assert fake_benchmark == []
    assert list(tmp_path.iterdir()) == []
    assert machine.seconds >= conditions.SETTLE_S  # it waited a minute for the load to fall
    said = capsys.readouterr().err
    assert "refused to start fake" in said
    assert "load average was 3.20 and still 3.20 after 60 s (above 1)" in said
    assert f"java (pid {OTHER_JAVA}) 90% of a core" in said
    assert "--allow-busy" in said


def test_a_load_that_falls_within_the_minute_lets_the_run_start(
    fake_benchmark: list[bool], tmp_path: Path
) -> None:
    machine = FakeMachine([2.0, 1.6, 1.2, 0.9])
    assert run.main(["--quick", "--results", str(tmp_path)], probes=machine.probes()) == 0
    record = json.loads((tmp_path / "fake.json").read_text())
    assert fake_benchmark == [True]
    assert record["busy"] is False
    assert record["pass"] is True
    assert record["conditions"]["load_before"] == {
        "first_seen": [2.0, 2.0, 2.0], "at_start": [0.9, 0.9, 0.9], "waited_s": 15.0,
    }  # fmt: skip
    assert rows_of(record)[0][6] == "met"


def test_allow_busy_runs_and_marks_the_result_busy(
    fake_benchmark: list[bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = FakeMachine([3.2], other_java_cores=0.9)
    status = run.main(["--quick", "--allow-busy", "--results", str(tmp_path)], probes=machine.probes())

    assert status == 0
    assert fake_benchmark == [True]
    record = json.loads((tmp_path / "fake.json").read_text())
    assert record["busy"] is True
    assert record["conditions"]["allow_busy"] is True
    assert record["conditions"]["busy_reasons"][0].startswith(
        "at the start: the 1-minute load average was 3.20"
    )
    assert record["pass"] is None
    assert [row["pass"] for row in record["rows"]] == [None]
    assert record["ratio"] == 2.0  # the figures are kept
    printed = capsys.readouterr().out
    assert "busy: no verdict" in printed
    assert "| met |" not in printed
    assert "BUSY" in table_from_files(tmp_path)


@pytest.mark.parametrize("passed", [True, False, None])
def test_a_busy_result_never_says_met(passed: bool | None) -> None:
    result = _result(passed)
    result.conditions = {
        "busy": True,
        "busy_reasons": ["during the run: other processes used the CPU: java (pid 1) 80% of a core"],
        "load_before": {"first_seen": [0.2] * 3, "at_start": [0.2] * 3, "waited_s": 0},
        "load_during": {"samples": 3, "min": 0.2, "median": 1.9, "max": 2.5},
    }
    record = json.loads(result.to_json({}))
    assert record["pass"] is None
    assert all(row["pass"] is None for row in record["rows"])
    verdicts = [line[6] for line in rows_of(record)]
    assert verdicts == ["busy: no verdict", "busy: no verdict"]
    assert "java (pid 1) 80% of a core" in rows_of(record)[0][7]


def test_before_a_later_benchmark_the_previous_ones_tail_is_not_busy_but_other_work_is() -> None:
    tail = settle(FakeMachine([2.5]).probes(), first=False)
    assert tail.busy is None
    assert "previous benchmark's tail" in (tail.note or "")
    other = settle(FakeMachine([2.5], other_java_cores=0.5).probes(), first=False)
    assert other.busy is not None
    assert "java" in other.busy
    quiet = settle(FakeMachine([0.4]).probes(), first=True)
    assert (quiet.busy, quiet.waited_s) == (None, 0.0)


def test_other_processes_count_above_ten_percent_of_a_core_and_ours_never() -> None:
    def reading(pid: int, cpu_s: float, ours: bool = False, started: float = 0.0) -> CpuReading:
        return CpuReading(pid, started, f"p{pid}", "", cpu_s, ours)

    first = [reading(1, 10.0), reading(2, 10.0), reading(3, 0.0, ours=True)]
    last = [
        reading(1, 15.0),  # 5 s of CPU in 100 s: 5%
        reading(2, 40.0),  # 30%
        reading(3, 90.0, ours=True),  # the benchmark itself
        reading(4, 20.0, started=500.0),  # started during the window: all its CPU counts
        reading(5, 50.0, started=10.0),  # existed before, never seen at the start: unknown, left out
    ]
    hogs = cpu_percent(first, last, seconds=100.0, since=100.0)
    assert [(h["pid"], h["cpu_percent"]) for h in hogs] == [(2, 30), (4, 20)]


def test_the_watch_records_the_load_during_the_run_and_the_other_processes() -> None:
    machine = FakeMachine([0.5, 1.5, 2.5], other_java_cores=0.25)
    watch = Watch(machine.probes(), interval_s=3600).start()
    machine.sleep(120)
    during = watch.stop()
    assert during["seconds"] == 120
    assert during["load_1m"] == {"samples": 2, "min": 0.5, "max": 1.5, "median": 1.0}
    assert [(h["pid"], h["cpu_percent"]) for h in during["other_processes"]] == [(OTHER_JAVA, 25)]


def test_the_process_table_knows_the_runs_own_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(conditions.RUN_ENV, "test-run")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        readings = {reading.pid: reading for reading in ProcessTable()()}
    finally:
        child.kill()
        child.wait()
    assert readings[os.getpid()].ours
    assert readings[child.pid].ours
    assert readings[child.pid].command.startswith(sys.executable)
    if 1 in readings:
        assert not readings[1].ours


def test_a_process_of_ours_stays_ours_after_its_parent_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark's child can leave a process behind for a moment (a JVM whose Python parent exited).
    Reparented, it no longer descends from the run, yet its CPU time is the run's work, not a neighbour's."""
    import signal

    monkeypatch.delenv(conditions.RUN_ENV, raising=False)
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!; sleep 1"], stdout=subprocess.PIPE, text=True)
    assert shell.stdout is not None
    left_behind = int(shell.stdout.readline())
    try:
        table = ProcessTable()
        assert next(r for r in table() if r.pid == left_behind).ours
        shell.wait(timeout=10)
        assert next(r for r in table() if r.pid == left_behind).ours
        assert not next(r for r in ProcessTable()() if r.pid == left_behind).ours, "a fresh table cannot tell"
    finally:
        os.kill(left_behind, signal.SIGKILL)
