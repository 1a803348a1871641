"""The JVM profile's grouping of stack samples (benchmarks/jvm_profile.py)."""

from __future__ import annotations

from benchmarks.jvm_profile import GROUPS, STAGE_NAMES, STARTUP, TASK_THREAD, group_of, stage_of

GENERATED = "org/apache/spark/sql/catalyst/expressions/GeneratedClass$GeneratedIteratorForCodegenStage2.next"


def test_the_innermost_known_frame_decides() -> None:
    operator_in_generated_code = [
        "java/util/ArrayList.add",
        "pulse/engine/ViewerChanges.handleInputRows",
        GENERATED,
        "org/apache/spark/executor/Executor$TaskRunner.run",
    ]
    assert group_of(operator_in_generated_code) == "operator, state store, shuffle"
    parse = ["org/apache/spark/sql/catalyst/json/JacksonParser.parse", GENERATED]
    assert group_of(parse) == "parse and check"
    assert group_of(["jdk/internal/loader/URLClassPath.getLoader", GENERATED]) == STARTUP


def test_generated_code_alone_is_the_check_and_unknown_frames_are_other() -> None:
    assert group_of(["sun/misc/Unsafe.getLong", GENERATED]) == "parse and check"
    assert group_of(["java/lang/Thread.run"]) == "other"
    assert group_of([]) == "other"
    assert GROUPS[-1] == "other"
    assert len(set(GROUPS)) == len(GROUPS)


def test_the_outermost_task_frame_names_the_stage() -> None:
    task = f"{TASK_THREAD} for task 3.0 in stage 7.0 (TID 12)"
    check = [
        "org/apache/spark/sql/catalyst/json/JacksonParser.parse",
        GENERATED,
        "org/apache/spark/shuffle/sort/BypassMergeSortShuffleWriter.write",
        "org/apache/spark/scheduler/ShuffleMapTask.runTask",
        "org/apache/spark/executor/Executor$TaskRunner.run",
    ]
    assert stage_of(task, check) == STAGE_NAMES[0]
    operator = ["pulse/engine/ViewerChanges.handleInputRows", "org/apache/spark/scheduler/ResultTask.runTask"]
    assert stage_of(task, operator) == STAGE_NAMES[1]
    # A task's stack cut short before its task frame is still task work; the driver's threads are not.
    assert stage_of(task, ["sun/misc/Unsafe.getLong"]) == "other task work"
    planning = ["org/apache/spark/sql/execution/QueryExecution.executedPlan"]
    assert stage_of("stream execution thread for pipeline", planning) == STAGE_NAMES[-1]
    assert stage_of("Thread-3", []) == STAGE_NAMES[-1]
    assert len(set(STAGE_NAMES)) == len(STAGE_NAMES) == 4
