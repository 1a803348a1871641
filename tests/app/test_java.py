"""Java discovery: the real runtime is found, and its absence is explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse.devstack.java import MIN_JAVA, JavaMissingError, find_java, java_major_version


def test_finds_a_java_17_or_newer() -> None:
    java = find_java()
    assert java.exists()
    assert java_major_version(java) >= MIN_JAVA


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaMissingError, match="Install a JDK"):
        find_java()


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_392\"' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(JavaMissingError, match="Java 8"):
        find_java()
