"""Resolve the pinned JVM jars from Maven Central into an ignored cache, once.

Java is the only prerequisite: resolution runs the Ivy jar that ships inside pyspark. Each
bundle is retrieved into `<jars>/<bundle>/` and stamped with a hash of its coordinates, so a
second resolve downloads nothing and a changed pin re-resolves by itself.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.local.java import find_java

SPARK_VERSION = "4.2.0"
DELTA_VERSION = "4.4.0"
KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.25.3"


@dataclass(frozen=True)
class Coordinate:
    """One Maven artifact, `group:artifact:version`."""

    group: str
    artifact: str
    version: str

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"


BUNDLES: dict[str, tuple[Coordinate, ...]] = {
    # Spark's Kafka source and Delta; the jars pyspark already ships are left off the classpath.
    "spark": (
        Coordinate("org.apache.spark", "spark-sql-kafka-0-10_2.13", SPARK_VERSION),
        Coordinate("io.delta", "delta-spark_4.2_2.13", DELTA_VERSION),
        Coordinate("io.delta", "delta-storage", DELTA_VERSION),
    ),
    # A KRaft broker, the perf tools (ProducerPerformance) and a log4j2 binding.
    "kafka": (
        Coordinate("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        Coordinate("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
        Coordinate("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
        Coordinate("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
    ),
}

_JAR_NAME = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d+(?:\.\d+)+[^/]*)\.jar$")


class JarResolutionError(RuntimeError):
    """Maven Central could not supply a bundle. The message names the log to read."""


def artifact_name(jar_file: str) -> str:
    """The artifact id of a jar file name without its version: `kafka-clients-3.9.2.jar` → `kafka-clients`."""
    match = _JAR_NAME.match(jar_file)
    return match.group("artifact") if match else jar_file.removesuffix(".jar")


def bundle_fingerprint(bundle: str) -> str:
    """A short hash of a bundle's coordinates; it changes whenever a pin changes."""
    text = "\n".join(str(c) for c in BUNDLES[bundle])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bundle_dir(jars_dir: Path, bundle: str) -> Path:
    """Folder holding one resolved bundle."""
    return jars_dir / bundle


def is_resolved(jars_dir: Path, bundle: str) -> bool:
    """True when the bundle was retrieved for exactly the pinned coordinates."""
    stamp = bundle_dir(jars_dir, bundle) / ".resolved"
    return stamp.exists() and stamp.read_text().strip() == bundle_fingerprint(bundle)


def ivy_jar() -> Path:
    """The Ivy jar bundled with pyspark."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise JarResolutionError("pyspark is not installed: run `make setup` first.") from exc
    candidates = sorted((Path(pyspark.__file__).parent / "jars").glob("ivy-*.jar"))
    if not candidates:
        raise JarResolutionError("pyspark ships no ivy jar; reinstall pyspark with `make setup`.")
    return candidates[-1]


def _ivy_module(bundle: str) -> str:
    deps = "\n".join(
        f'    <dependency org="{c.group}" name="{c.artifact}" rev="{c.version}"/>' for c in BUNDLES[bundle]
    )
    return (
        '<ivy-module version="2.0">\n'
        f'  <info organisation="pulse" module="{bundle}-bundle"/>\n'
        '  <configurations><conf name="default"/></configurations>\n'
        '  <dependencies defaultconfmapping="default->default">\n'
        f"{deps}\n"
        "  </dependencies>\n"
        "</ivy-module>\n"
    )


def resolve(jars_dir: Path, bundle: str, log_dir: Path, *, echo: Callable[[str], None] = print) -> list[Path]:
    """Retrieve a bundle and its runtime dependencies, unless it is already cached.

    Args:
        jars_dir: the jar cache root (`$PULSE_HOME/jars`).
        bundle: `spark` or `kafka`.
        log_dir: where Ivy's output goes (`<log_dir>/jars-<bundle>.log`).
        echo: progress sink.

    Returns:
        The jar files of the bundle.

    Raises:
        JarResolutionError: when Ivy fails; the message names the log.
    """
    target = bundle_dir(jars_dir, bundle)
    if is_resolved(jars_dir, bundle):
        return bundle_jars(jars_dir, bundle)
    java = find_java()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"jars-{bundle}.log"
    staging = jars_dir / f".{bundle}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    module = staging / "ivy.xml"
    module.write_text(_ivy_module(bundle))
    echo(f"Resolving the {bundle} jars from Maven Central ({len(BUNDLES[bundle])} pinned artifacts)…")
    started = time.monotonic()
    command = [
        str(java), "-jar", str(ivy_jar()),
        "-ivy", str(module),
        "-confs", "default",
        "-m2compatible",
        "-cache", str(jars_dir / ".ivy-cache"),
        "-retrieve", str(staging / "[artifact]-[revision](-[classifier]).[ext]"),
    ]  # fmt: skip
    with log_path.open("w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise JarResolutionError(
            f"Resolving the {bundle} jars failed (exit {result.returncode}); see {log_path}:\n{tail}"
        )
    module.unlink()
    for stray in staging.iterdir():
        if stray.suffix != ".jar":
            stray.unlink()
    (staging / ".resolved").write_text(bundle_fingerprint(bundle) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    jars = bundle_jars(jars_dir, bundle)
    size_mb = sum(j.stat().st_size for j in jars) / 1e6
    echo(f"  {len(jars)} jars, {size_mb:.0f} MB in {time.monotonic() - started:.0f} s → {target}")
    return jars


def bundle_jars(jars_dir: Path, bundle: str) -> list[Path]:
    """The jar files of a resolved bundle, sorted."""
    return sorted(bundle_dir(jars_dir, bundle).glob("*.jar"))


def spark_extra_jars(jars_dir: Path, pyspark_jars: Path) -> list[Path]:
    """The Spark bundle minus every artifact pyspark already ships, so no class appears twice."""
    shipped = {artifact_name(p.name) for p in pyspark_jars.glob("*.jar")}
    return [jar for jar in bundle_jars(jars_dir, "spark") if artifact_name(jar.name) not in shipped]
