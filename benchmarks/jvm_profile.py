"""Benchmark 12: where each engine's Spark JVM spends its CPU, by Java Flight Recorder.

`pulse pipeline all --once` over the `scaleout` even topic (300,000 events) on one task slot, once per engine
(`PULSE_BENCH_ENGINES`, default both) and round, with JFR's execution sampler on the pipeline's JVM
(`JAVA_TOOL_OPTIONS`, so the broker's JVM is not recorded). Each sample is put in one group by the innermost
frame of a known kind (`GROUPS`): the Kafka read, the parse and check, the keyed operator with its state
store and shuffle, the Arrow transfer to the driver, and start-up (class loading, code generation,
planning). The figure is the samples per group, last ÷ first engine (keyed ÷ driver by default): it says
what the keyed engine's per-event work costs beyond the driver engine's, and where (docs/scale.md). With
`PULSE_BENCH_ENGINES=keyed@<ref>,keyed` it compares that commit's keyed engine with this one's.

A second view puts each sample in the place it ran (`STAGES`): the map stage (the Kafka read, the check,
the shuffle write), the result stage (the shuffle read, the keyed operator, the Arrow conversion), other
task work, or off the tasks (the session's start, py4j, each micro-batch's planning). On a cluster the two
stages spread over the executors and the rest stays on the driver.

JFR samples a few threads each period, so only the shares and the ratios between the engines mean
something, not the sample counts themselves.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, Workspace, broker, log, workspace
from benchmarks.result import Result, ratio
from benchmarks.scaleout import engine_command, engines, fill_topic

NAME = "jvm_profile"
FULL = {"events": 300_000, "rounds": 3}
QUICK = {"events": 30_000, "rounds": 1}
TOPIC = "scaleout-even"
# (group, a substring of a frame's class or method name); a sample takes the group of its innermost frame
# that matches one, in this order for a frame matching several.
FRAMES = (
    ("operator, state store, shuffle", "pulse/engine/ViewerChanges"),
    ("operator, state store, shuffle", "org/rocksdb"),
    ("operator, state store, shuffle", "execution/streaming/state"),
    ("operator, state store, shuffle", "TransformWithState"),
    ("operator, state store, shuffle", "org/apache/spark/shuffle"),
    ("operator, state store, shuffle", "org/apache/spark/util/collection"),
    ("operator, state store, shuffle", "org/apache/spark/serializer"),
    ("operator, state store, shuffle", "net/jpountz"),
    ("Kafka read", "org/apache/kafka"),
    ("parse and check", "catalyst/json"),
    ("parse and check", "com/fasterxml/jackson"),
    ("parse and check", "DateTimeUtils"),
    ("parse and check", "java/util/regex"),
    ("parse and check", "UTF8String"),
    ("start-up: classes, code generation, planning", "ClassLoader"),
    ("start-up: classes, code generation, planning", "java/util/zip"),
    ("start-up: classes, code generation, planning", "URLClassPath"),
    ("start-up: classes, code generation, planning", "sun/nio/cs/StreamDecoder"),
    ("start-up: classes, code generation, planning", "org/codehaus"),
    ("start-up: classes, code generation, planning", "catalyst/optimizer"),
    ("start-up: classes, code generation, planning", "catalyst/analysis"),
    ("start-up: classes, code generation, planning", "SparkStrategies"),
    ("Arrow to the driver, py4j", "org/apache/arrow"),
    ("Arrow to the driver, py4j", "ArrowConverters"),
    ("Arrow to the driver, py4j", "py4j"),
    # Last: generated code runs the projections and filters of the check, and calls all of the above.
    ("parse and check", "GeneratedClass"),
)
GROUPS = (*dict.fromkeys(group for group, _ in FRAMES), "other")
STARTUP = "start-up: classes, code generation, planning"
# Where a sample ran, the second view: the Spark stage of its task (a frame of the task's class, the
# outermost of the stack), any other task work, or a thread of the driver's own (the session's start,
# py4j, each micro-batch's planning on the stream thread). On a cluster the stages spread over the
# executors and the rest does not.
STAGES = (
    ("map stage: Kafka read, parse and check, shuffle write", "org/apache/spark/scheduler/ShuffleMapTask"),
    ("result stage: shuffle read, operator and state, Arrow", "org/apache/spark/scheduler/ResultTask"),
)
TASK_THREAD = "Executor task launch worker"
STAGE_NAMES = (
    *(stage for stage, _ in STAGES),
    "other task work",
    "off the tasks: start-up, py4j, planning",
)
# Deep enough to reach a task's outermost frames (Spark's iterators nest deeply).
STACK_DEPTH = 256
STAGE_PREFIX = "by stage: "


def jfr_tool() -> str:
    """The JDK's `jfr` command; raises with what to install when there is none."""
    found = shutil.which("jfr") or (
        str(Path(os.environ["JAVA_HOME"]) / "bin" / "jfr") if os.environ.get("JAVA_HOME") else None
    )
    if not found or not Path(found).exists():
        raise RuntimeError("jvm_profile needs a JDK's `jfr` tool (apt-get install openjdk-17-jdk-headless)")
    return found


def group_of(frames: list[str]) -> str:
    """The group of one sample's stack (innermost frame first)."""
    for frame in frames:
        for group, needle in FRAMES:
            if needle in frame:
                return group
    return "other"


def stage_of(thread: str, frames: list[str]) -> str:
    """Where one sample ran (`STAGES`): its task's stage, other task work, or off the tasks."""
    for stage, needle in STAGES:
        if any(needle in frame for frame in frames):
            return stage
    return STAGE_NAMES[-2] if thread.startswith(TASK_THREAD) else STAGE_NAMES[-1]


class UnreadableRecordingError(RuntimeError):
    """`jfr print` could not read a recording (seen once: a JVM that ended before JFR finished its dump)."""


def samples_by_group(recording: Path) -> dict[str, int]:
    """The execution samples of a JFR recording, counted per group (`GROUPS`) and per stage
    (`STAGE_NAMES`, each prefixed with `STAGE_PREFIX`).

    Raises:
        UnreadableRecordingError: `jfr print` failed on it.
    """
    done = subprocess.run(
        [jfr_tool(), "print", "--json", "--events", "jdk.ExecutionSample", "--stack-depth", str(STACK_DEPTH),
         str(recording)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise UnreadableRecordingError(f"jfr print failed on {recording}: {done.stderr.strip()[-500:]}")
    printed = done.stdout
    counts: collections.Counter[str] = collections.Counter()
    for event in json.loads(printed)["recording"]["events"]:
        trace = event["values"].get("stackTrace") or {"frames": []}
        names = [f"{f['method']['type']['name']}.{f['method']['name']}" for f in trace["frames"]]
        thread = (event["values"].get("sampledThread") or {}).get("javaName") or ""
        counts[group_of(names)] += 1
        counts[STAGE_PREFIX + stage_of(thread, names)] += 1
    return {key: counts.get(key, 0) for key in (*GROUPS, *(STAGE_PREFIX + s for s in STAGE_NAMES))}


def one_run(ws: Workspace, engine: str, tag: str) -> dict[str, Any]:
    """`pulse pipeline all --once` over the topic on a fresh lake, local[1], its JVM recorded."""
    recording = ws.home / f"{tag}.jfr"
    command, code_env = engine_command(engine)
    env = ws.env(
        PULSE_LAKE=str(ws.home / f"lake-{tag}"),
        PULSE_KAFKA_TOPIC=TOPIC,
        PULSE_SPARK_MASTER="local[1]",
        JAVA_TOOL_OPTIONS=f"-XX:StartFlightRecording=filename={recording},settings=profile,dumponexit=true",
        **code_env,
    )
    log_path = ws.home / f"pipeline-{tag}.log"
    with log_path.open("wb") as out:
        done = subprocess.run([*command, "pipeline", "all", "--once"], cwd=REPO,
                              env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"pulse pipeline all --once failed:\n{log_path.read_text(errors='replace')[-3000:]}"
        )
    counts = samples_by_group(recording)
    shutil.rmtree(ws.home / f"lake-{tag}", ignore_errors=True)
    recording.unlink()
    return counts


def run(quick: bool) -> Result:
    """Fill the topic; then, round after round, each engine once; samples per group summed over rounds."""
    size = QUICK if quick else FULL
    chosen = engines()
    per_engine: dict[str, list[dict[str, int]]] = {engine: [] for engine in chosen}
    with workspace(NAME) as ws, broker(ws):
        fill_topic(ws, TOPIC, size["events"], skewed=False)
        for round_no in range(size["rounds"]):
            for engine in chosen:
                tag = f"{engine.replace('@', '-')}-{round_no}"
                try:
                    counts = one_run(ws, engine, tag)
                except UnreadableRecordingError as exc:  # once, then the run counts as failed
                    log(f"jvm_profile: {exc}; running {engine} again")
                    counts = one_run(ws, engine, f"{tag}-again")
                log(f"jvm_profile round {round_no + 1}/{size['rounds']}, {engine}: {counts}")
                per_engine[engine].append(counts)
    stages = tuple(STAGE_PREFIX + stage for stage in STAGE_NAMES)
    totals = {e: {k: sum(r[k] for r in runs) for k in (*GROUPS, *stages)} for e, runs in per_engine.items()}
    # The first engine is the before, the last the after (`driver,keyed` by default; `keyed@<ref>,keyed`
    # compares a commit's keyed engine with this one's).
    before, after = chosen[0], chosen[-1]
    rows = []
    # Two views of the same samples, each summing to all of them: by frame group, then by stage.
    for family in (GROUPS, stages):
        for key in family:
            shares = {e: t[key] / max(1, sum(t[k] for k in family)) for e, t in totals.items()}
            row: dict[str, Any] = {
                "label": f"{key}: samples "
                + " / ".join(f"{e} {totals[e][key]:,}" for e in chosen)
                + "; share "
                + " / ".join(f"{shares[e]:.0%}" for e in chosen),
                "unit": "samples",
            }
            if len(chosen) == 2:
                row |= {"baseline": totals[before][key], "candidate": totals[after][key],
                        "ratio": ratio(totals[after][key], totals[before][key])}  # fmt: skip
            rows.append(row)

    def per_event(engine: str) -> int:
        return sum(totals[engine][group] for group in GROUPS if group != STARTUP)

    return Result(
        name=NAME,
        quick=quick,
        parameters=size | {"engines": list(chosen), "master": "local[1]", "topic": TOPIC},
        metric=f"the Spark JVM's CPU samples past start-up, {after} ÷ {before} engine",
        unit="samples",
        better="lower",
        baseline={"label": f"{before} engine", "value": per_event(before)},
        candidate={"label": f"{after} engine", "value": per_event(after)},
        ratio=ratio(per_event(after), per_event(before)) if len(chosen) == 2 else None,
        target=f"report: where the {after} engine's work beyond the {before} engine's goes",
        passed=None,
        rows=rows,
        details={"samples_by_round": per_engine, "frames": [list(f) for f in FRAMES]},
        notes=[
            "JFR's execution sampler (settings=profile) on the pipeline's JVM only; a sample's group is its "
            "innermost frame of a known kind. Shares and ratios mean something, sample counts do not.",
            "Generated code (the check's projections and filters) counts as parse and check when no frame "
            "inside it is of another kind.",
            "By stage: the Spark stage of the task a sample ran in (its outermost ShuffleMapTask or "
            "ResultTask frame), other task work, or off the tasks (the driver's own threads).",
        ],
    )
