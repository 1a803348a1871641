"""The keyed engine: Pulse's per-viewer work as a JVM operator in Spark tasks (`ViewerChanges.java`).

The operator's Java source ships in the wheel (`java/`). A local session compiles it once with `javac`
against pyspark's own jars, so the classes match the Spark that runs them, and caches the jar in the jar
cache (`$PULSE_HOME/jars/engine/`, or under `PULSE_JARS`), named after the sources' hash.
`pulse.spark.get_spark` puts it on the driver's classpath (locally the driver and the executors are one
JVM). `keyed` and `grouped` are the operator's Python face.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCES = Path(__file__).parent / "java"
OPERATOR_CLASS = "pulse.engine.ViewerChanges"


class EngineUnavailableError(RuntimeError):
    """The keyed engine's jar cannot be built or loaded. The message says what to install or set."""


def sources(root: Path = SOURCES) -> list[Path]:
    """The operator's Java sources under `root` (the package's own by default), in a stable order."""
    return sorted(root.rglob("*.java"))


def jar_path(jvm_dir: Path, root: Path = SOURCES) -> Path:
    """Where the jar of the current sources is cached: named after their hash, so a changed source (a
    new wheel) builds a new jar and an old one is never loaded by mistake."""
    digest = hashlib.sha256()
    for source in sources(root):
        digest.update(source.relative_to(root).as_posix().encode())
        digest.update(source.read_bytes())
    return jvm_dir / f"pulse-engine-{digest.hexdigest()[:12]}.jar"


def build_jar(jvm_dir: Path, root: Path = SOURCES) -> Path:
    """The operator's jar, compiled first when the cache has none for these sources.

    Raises:
        EngineUnavailableError: no JDK (`javac`, `jar`), the sources do not compile, or the jar cannot be
            written.
    """
    jar = jar_path(jvm_dir, root)
    if jar.exists():
        return jar
    try:
        return _compile(jar, root)
    except OSError as exc:  # a cache folder that cannot be written
        raise EngineUnavailableError(f"cannot build the keyed engine's jar at {jar}: {exc}") from exc


def _compile(jar: Path, root: Path) -> Path:
    """Compile the sources under `root` into `jar`."""
    import pyspark

    jvm_dir = jar.parent
    for tool in ("javac", "jar"):
        if shutil.which(tool) is None:
            raise EngineUnavailableError(
                f"{tool} not found: the keyed engine (PULSE_ENGINE=keyed) compiles its operator with a JDK "
                "17+ (apt-get install openjdk-17-jdk-headless), or set PULSE_ENGINE=driver"
            )
    classpath = str(Path(pyspark.__file__).parent / "jars" / "*")
    jvm_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as classes:
        compiled = subprocess.run(
            ["javac", "-nowarn", "-d", classes, "-cp", classpath, *map(str, sources(root))],
            capture_output=True,
            text=True,
        )
        if compiled.returncode != 0:
            raise EngineUnavailableError(f"javac failed on {root}:\n{compiled.stderr[-4000:]}")
        # A name of its own, so that two processes building at once each replace the jar whole.
        handle, name = tempfile.mkstemp(dir=jvm_dir, suffix=".jar.partial")
        os.close(handle)
        partial = Path(name)
        packed = subprocess.run(
            ["jar", "cf", str(partial), "-C", classes, "."], capture_output=True, text=True
        )
        if packed.returncode != 0:
            partial.unlink(missing_ok=True)
            raise EngineUnavailableError(f"jar failed on {root}:\n{packed.stderr[-4000:]}")
        partial.replace(jar)
    return jar


def operator(spark: SparkSession):  # type: ignore[no-untyped-def]
    """The operator's class through py4j.

    Raises:
        EngineUnavailableError: the session was started without the engine's jar.
    """
    from py4j.java_gateway import JavaClass

    from pulse.spark import on_databricks

    found = spark._jvm.pulse.engine.ViewerChanges  # type: ignore[union-attr]
    if not isinstance(found, JavaClass) and on_databricks():
        raise EngineUnavailableError(
            f"the cluster cannot load {OPERATOR_CLASS}: on Databricks the keyed engine's jar is a library "
            "of the job's tasks, which the deploy attaches where the environment runs it (databricks.engine "
            "= 'keyed' in infra/config.py, docs/delivery.md); or set PULSE_ENGINE=driver"
        )
    if not isinstance(found, JavaClass):  # py4j names an unknown class as a package
        raise EngineUnavailableError(
            f"the Spark session cannot load {OPERATOR_CLASS}: the keyed engine needs its jar on the "
            "driver's classpath, which `pulse.spark.get_spark` adds when a JDK is installed "
            "(apt-get install openjdk-17-jdk-headless); or set PULSE_ENGINE=driver"
        )
    return found


def keyed(checked: DataFrame, horizon_us: int, partitions: int) -> DataFrame:
    """Checked records (with the operator's columns: event_id, event, user_id, video_id, t in µs,
    kafka_partition, kafka_offset, reason) watermarked on their minute's end and hash-partitioned by
    viewer into the operator's `partitions` (`ViewerChanges.keyed`): the one dataset both the batch
    and `grouped` read, so Spark checks each record once."""
    from pyspark.sql import DataFrame

    spark = checked.sparkSession
    return DataFrame(operator(spark).keyed(checked._jdf, horizon_us, partitions), spark)


def grouped(
    keyed_rows: DataFrame,
    gap_us: int,
    horizon_us: int,
    initial: DataFrame | None = None,
    floor_us: int | None = None,
) -> DataFrame:
    """The operator's changes (`ViewerChanges.CHANGES`) over `keyed` records, grouped by viewer; with
    each viewer's state starting from `initial` (held events from `floor_us` on, and the segments of
    sessions before it) after a reset, and with `floor_us` alone when a query built that way resumes
    from its checkpoint."""
    from pyspark.sql import DataFrame

    spark = keyed_rows.sparkSession
    cls = operator(spark)
    assert floor_us is not None or initial is None, "an initial state starts at a floor"
    floor = floor_us if floor_us is not None else -(2**63)
    initial_jdf = initial._jdf if initial is not None else None
    return DataFrame(cls.grouped(keyed_rows._jdf, initial_jdf, gap_us, horizon_us, floor), spark)
