"""The one Spark session factory every job uses.

On Databricks the runtime owns the session and supplies the jars, so Pulse takes the active
session and leaves its configuration alone. Locally it builds `local[*]` with the cached Kafka
and Delta jars, the Delta SQL extension and catalog, and UTC as the session time zone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pulse.devstack import jars
from pulse_core.settings import PulseSettings, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def on_databricks() -> bool:
    """True inside a Databricks runtime."""
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def local_shuffle_partitions() -> int:
    """Shuffle partitions for a local run: one per core. Micro-batches are small, and every extra task
    is paid in every Spark job of every batch (docs/pipeline.md, "What a micro-batch costs")."""
    return max(1, os.cpu_count() or 1)


def extra_conf() -> dict[str, str]:
    """Spark settings from `PULSE_SPARK_CONF` (`key=value,key=value`), applied last to a local session."""
    raw = os.environ.get("PULSE_SPARK_CONF", "").strip()
    pairs = [item.split("=", 1) for item in raw.split(",") if item.strip()]
    bad = [item for item in pairs if len(item) != 2]
    if bad:
        raise ValueError(f"PULSE_SPARK_CONF: expected key=value[,key=value…], got {raw!r}")
    return {key.strip(): value.strip() for key, value in pairs}


CLASSPATH_CONF = "spark.driver.extraClassPath"
# The local JVM's options. The parallel collector, not G1 (Java 17's default): with G1's 1-MiB regions at
# this heap, each large batch's buffers (Arrow, the sort's pages) are humongous allocations, and every one
# started a concurrent marking cycle. In a keyed `--once` over 1.2M events that was 14 s of collector CPU
# in a 67-s run; the parallel collector took 2.3 s (docs/scale.md, session 20). A PULSE_SPARK_CONF value
# of the same key replaces these options.
DRIVER_JAVA_OPTIONS = "-Duser.timezone=UTC -XX:+UseParallelGC"


def _engine_jar(settings: PulseSettings) -> Path | None:
    """The keyed engine's jar for a local session, built once into the jar cache (shared by every
    PULSE_HOME that shares it); None without a JDK, unless the settings ask for the keyed engine, whose
    error then says what to install."""
    from pulse import engine

    try:
        return engine.build_jar(settings.jars_dir / "engine")
    except engine.EngineUnavailableError:
        if settings.engine == "keyed":
            raise
        return None


def get_spark(app_name: str = "pulse", settings: PulseSettings | None = None) -> SparkSession:
    """Return the Spark session for this environment, creating a local one if needed.

    Args:
        app_name: the Spark application name shown in logs and the UI.
        settings: Pulse settings; read from the environment when omitted.
    """
    from pyspark.sql import SparkSession

    if on_databricks():
        return SparkSession.builder.getOrCreate()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active

    settings = settings or load_settings()
    import pyspark

    pyspark_jars = Path(pyspark.__file__).parent / "jars"
    jars.resolve(settings.jars_dir, "spark", echo=lambda line: print(line, file=sys.stderr))
    extra = jars.spark_extra_jars(settings.jars_dir, pyspark_jars)
    # Python workers must run the interpreter that runs the driver (the project venv).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    partitions = str(local_shuffle_partitions())
    scratch = settings.home / "spark"
    builder = (
        SparkSession.builder.master(os.environ.get("PULSE_SPARK_MASTER", "local[*]"))
        .appName(app_name)
        .config("spark.jars", ",".join(str(j) for j in extra))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", partitions)
        .config("spark.default.parallelism", partitions)
        .config("spark.databricks.delta.snapshotPartitions", "1")
        # VACUUM lists files with this many tasks (10,000 by default): far too many for one machine.
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", partitions)
        .config("spark.driver.memory", os.environ.get("PULSE_SPARK_DRIVER_MEMORY", "1500m"))
        .config("spark.local.dir", str(scratch / "tmp"))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.ui.enabled", os.environ.get("PULSE_SPARK_UI", "false"))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", DRIVER_JAVA_OPTIONS)
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
    )
    conf = extra_conf()
    engine = _engine_jar(settings)
    if engine is not None:
        # The keyed engine's operator (`pulse.engine`): one JVM locally, so the driver's classpath is
        # the executors' too. A PULSE_SPARK_CONF classpath (the benchmarks' operators) is kept beside it.
        extra_path = conf.get(CLASSPATH_CONF)
        conf[CLASSPATH_CONF] = f"{engine}:{extra_path}" if extra_path else str(engine)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(os.environ.get("PULSE_SPARK_LOG_LEVEL", "WARN"))
    return session
