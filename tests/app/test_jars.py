"""Jar bundles: pinned coordinates, the cache stamp, and the classpath de-duplication against pyspark."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from pulse.devstack import jars


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
    assert {"kafka_2.13", "log4j-slf4j2-impl"} <= kafka
    assert {c.artifact for c in jars.BUNDLES["tools"]} == {"kafka-tools"}
    assert jars.KAFKA_VERSION.startswith("4.")


def test_lock_was_made_from_the_pins() -> None:
    """A pin changed without `pulse jars lock` fails here, not on a user's machine."""
    locked = jars.read_lock()
    for bundle, coordinates in jars.BUNDLES.items():
        files = {(j.group, j.artifact, j.version) for j in locked if j.bundle == bundle}
        for c in coordinates:
            assert (c.group, c.artifact, c.version) in files, f"{c} is pinned but not in the {bundle} lock"
    assert all(re.fullmatch(r"[0-9a-f]{40}", j.sha1) for j in locked)


def test_a_changed_pin_invalidates_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    bumped = (*jars.BUNDLES["kafka"], jars.Coordinate("org.example", "extra", "1.0"))
    monkeypatch.setitem(jars.BUNDLES, "kafka", bumped)
    with pytest.raises(jars.JarResolutionError, match="pulse jars lock"):
        jars.read_lock()


def test_lock_entries_from_ivy_file_names(tmp_path: Path) -> None:
    for name in (
        "com.github.luben@zstd-jni@1.5.7-3@zstd-jni-1.5.7-3.jar",
        "org.example@native@2.0@native-2.0-linux-x86_64.jar",
    ):
        (tmp_path / name).write_bytes(b"jar")
    entries = jars.locked_from_retrieved("spark", tmp_path)
    assert [(e.group, e.artifact, e.version, e.classifier) for e in entries] == [
        ("com.github.luben", "zstd-jni", "1.5.7-3", ""),
        ("org.example", "native", "2.0", "linux-x86_64"),
    ]
    assert entries[1].repo_path == "org/example/native/2.0/native-2.0-linux-x86_64.jar"
    assert entries[0].sha1 == hashlib.sha1(b"jar").hexdigest()  # noqa: S324


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[jars.LockedJar]]:
    """A Maven-layout mirror on disk (`PULSE_MAVEN_REPO=file://…`) holding a two-jar bundle, and its lock."""
    repo = tmp_path / "repo"
    entries = []
    for artifact in ("alpha", "beta"):
        body = f"contents of {artifact}".encode()
        jar = jars.LockedJar("kafka", "org.example", artifact, "1.0", "", hashlib.sha1(body).hexdigest())  # noqa: S324
        (repo / jar.repo_path).parent.mkdir(parents=True)
        (repo / jar.repo_path).write_bytes(body)
        entries.append(jar)
    lock_file = tmp_path / "jars.lock"
    jars.write_lock(entries, lock_file)
    monkeypatch.setattr(jars, "LOCK_FILE", lock_file)
    monkeypatch.setenv("PULSE_MAVEN_REPO", repo.as_uri())
    monkeypatch.setenv("PULSE_JAR_CACHE", str(tmp_path / "machine-cache"))
    return repo, entries


def test_resolve_fetches_checks_and_stamps(tmp_path: Path, mirror: tuple[Path, list[jars.LockedJar]]) -> None:
    _, entries = mirror
    lines: list[str] = []
    got = jars.resolve(tmp_path / "jars", "kafka", echo=lines.append)
    assert [p.name for p in got] == ["alpha-1.0.jar", "beta-1.0.jar"]
    assert got[0].read_bytes() == b"contents of alpha"
    assert jars.is_resolved(tmp_path / "jars", "kafka")
    assert "2 downloaded" in lines[-1]
    assert (tmp_path / "machine-cache" / entries[0].repo_path).exists()
    # A second clone on the same machine downloads nothing: it links the machine cache.
    again: list[str] = []
    jars.resolve(tmp_path / "clone2", "kafka", echo=again.append)
    assert "0 downloaded" in again[-1]
    # An already-resolved bundle is silent.
    quiet: list[str] = []
    jars.resolve(tmp_path / "jars", "kafka", echo=quiet.append)
    assert quiet == []


def test_a_corrupt_download_is_refused(tmp_path: Path, mirror: tuple[Path, list[jars.LockedJar]]) -> None:
    repo, entries = mirror
    (repo / entries[1].repo_path).write_bytes(b"tampered")
    with pytest.raises(jars.JarResolutionError, match="SHA-1"):
        jars.resolve(tmp_path / "jars", "kafka", echo=lambda _: None)
    assert not jars.is_resolved(tmp_path / "jars", "kafka")
    assert not (tmp_path / "machine-cache" / entries[1].repo_path).exists()


def test_a_missing_artifact_names_the_url(tmp_path: Path, mirror: tuple[Path, list[jars.LockedJar]]) -> None:
    repo, entries = mirror
    (repo / entries[0].repo_path).unlink()
    with pytest.raises(jars.JarResolutionError, match=r"alpha-1\.0\.jar.*PULSE_MAVEN_REPO"):
        jars.resolve(tmp_path / "jars", "kafka", echo=lambda _: None)


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
    """`make setup` resolved every bundle from Maven Central: resolving again is a no-op."""
    for bundle in jars.BUNDLES:
        assert jars.is_resolved(jars_dir, bundle), f"run `make setup` ({bundle} jars missing)"
    names = {jars.artifact_name(p.name) for p in jars.bundle_jars(jars_dir, "kafka")}
    assert {"kafka_2.13", "kafka-clients", "log4j-core"} <= names
    lines: list[str] = []
    again = jars.resolve(jars_dir, "spark", echo=lines.append)
    assert lines == []
    assert any(p.name.startswith("delta-spark_4.2_2.13-") for p in again)
