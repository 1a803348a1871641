"""Compile the benchmarks' JVM operators (benchmarks/jvm/**/*.java) into a jar Spark can load.

javac (JDK 17+, which Spark 4 needs anyway) compiles them against pyspark's own jars and the pipeline's
own operator (`pulse.engine`), so the classes match the Spark that runs them. The jar is cached in
`.pulse/jvm/` (ignored) and rebuilt when a source is newer than it. A local session loads it with
`spark.driver.extraClassPath` (the driver and the executor are one JVM), beside the engine's jar that
`pulse.spark.get_spark` adds itself.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.harness import REPO
from pulse import engine

SOURCES = REPO / "benchmarks" / "jvm"
JAR = REPO / ".pulse" / "jvm" / "pulse-bench-operators.jar"


def operators_jar() -> Path:
    """The jar of the benchmarks' JVM operators, compiled first if a source changed since."""
    import pyspark

    sources = sorted(SOURCES.rglob("*.java"))
    if not sources:
        raise FileNotFoundError(f"no Java sources under {SOURCES}")
    newest = max(s.stat().st_mtime for s in [*sources, *engine.sources()])
    if JAR.exists() and JAR.stat().st_mtime >= newest:
        return JAR
    for tool in ("javac", "jar"):
        if shutil.which(tool) is None:
            needs = "the JVM operators need a JDK 17+ (apt-get install openjdk-17-jdk-headless)"
            raise RuntimeError(f"{tool} not found: {needs}")
    engine_jar = engine.build_jar(JAR.parent)
    classpath = f"{Path(pyspark.__file__).parent / 'jars' / '*'}:{engine_jar}"
    JAR.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as classes:
        compiled = subprocess.run(
            ["javac", "-nowarn", "-d", classes, "-cp", classpath, *map(str, sources)],
            capture_output=True,
            text=True,
        )
        if compiled.returncode != 0:
            raise RuntimeError(f"javac failed on {SOURCES}:\n{compiled.stderr[-4000:]}")
        partial = JAR.with_suffix(".jar.partial")
        subprocess.run(["jar", "cf", str(partial), "-C", classes, "."], check=True)
        partial.replace(JAR)
    return JAR


def spark_conf() -> str:
    """`PULSE_SPARK_CONF` that puts the operators on a local session's classpath."""
    return f"spark.driver.extraClassPath={operators_jar()}"
