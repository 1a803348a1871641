"""Jar bundles: pinned coordinates, the cache stamp, and the classpath de-duplication against pyspark."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.local import jars


@pytest.mark.parametrize(
    ("file_name", "artifact"),
    [
        ("kafka-clients-3.9.2.jar", "kafka-clients"),
        ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
        ("zstd-jni-1.5.7-3.jar", "zstd-jni"),
        ("javax.annotation-api-1.3.2.jar", "javax.annotation-api"),
        ("scala-parallel-collections_2.13-1.2.0.jar", "scala-parallel-collections_2.13"),
        ("javassist-3.30.2-GA.jar", "javassist"),
    ],
)
def test_artifact_name_drops_the_version(file_name: str, artifact: str) -> None:
    assert jars.artifact_name(file_name) == artifact


def test_pins_match_design() -> None:
    spark = {str(c) for c in jars.BUNDLES["spark"]}
    assert "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0" in spark
    assert "io.delta:delta-spark_4.2_2.13:4.4.0" in spark
    kafka = {c.artifact for c in jars.BUNDLES["kafka"]}
    assert {"kafka_2.13", "kafka-tools", "log4j-slf4j2-impl"} <= kafka
    assert jars.KAFKA_VERSION.startswith("4.")


def test_stamp_tracks_the_pins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = jars.bundle_dir(tmp_path, "kafka")
    folder.mkdir(parents=True)
    assert not jars.is_resolved(tmp_path, "kafka")
    (folder / ".resolved").write_text(jars.bundle_fingerprint("kafka"))
    assert jars.is_resolved(tmp_path, "kafka")
    bumped = (*jars.BUNDLES["kafka"], jars.Coordinate("org.example", "extra", "1.0"))
    monkeypatch.setitem(jars.BUNDLES, "kafka", bumped)
    assert not jars.is_resolved(tmp_path, "kafka")


def test_spark_classpath_skips_what_pyspark_ships(tmp_path: Path) -> None:
    shipped = tmp_path / "pyspark-jars"
    shipped.mkdir()
    for name in ("scala-library-2.13.18.jar", "slf4j-api-2.0.17.jar", "ivy-2.5.3.jar"):
        (shipped / name).touch()
    bundle = jars.bundle_dir(tmp_path / "cache", "spark")
    bundle.mkdir(parents=True)
    for name in ("scala-library-2.13.16.jar", "slf4j-api-2.0.17.jar", "kafka-clients-3.9.2.jar"):
        (bundle / name).touch()
    extra = jars.spark_extra_jars(tmp_path / "cache", shipped)
    assert [p.name for p in extra] == ["kafka-clients-3.9.2.jar"]


def test_resolved_cache_has_the_real_jars(jars_dir: Path) -> None:
    """`make setup` resolved both bundles: resolving again is a no-op that downloads nothing."""
    for bundle in jars.BUNDLES:
        assert jars.is_resolved(jars_dir, bundle), f"run `make setup` ({bundle} jars missing)"
    names = {jars.artifact_name(p.name) for p in jars.bundle_jars(jars_dir, "kafka")}
    assert {"kafka_2.13", "kafka-clients", "kafka-tools", "log4j-core"} <= names
    lines: list[str] = []
    again = jars.resolve(jars_dir, "spark", jars_dir / "unused-logs", echo=lines.append)
    assert lines == []
    assert any(p.name.startswith("delta-spark_4.2_2.13-") for p in again)
