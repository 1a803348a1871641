"""The JVM profile's grouping of stack samples (benchmarks/jvm_profile.py)."""

from __future__ import annotations

from benchmarks.jvm_profile import GROUPS, STARTUP, group_of

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
