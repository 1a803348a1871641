"""Find a usable Java runtime (17 or newer) for Spark and the Kafka broker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

MIN_JAVA = 17


class JavaMissingError(RuntimeError):
    """No Java 17+ runtime was found. The message says how to install one."""


def find_java() -> Path:
    """Return the `java` executable from `JAVA_HOME`, else from `PATH`, checking its version.

    Raises:
        JavaMissingError: when there is no java, or it is older than Java 17.
    """
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is None or not candidate.exists():
        found = shutil.which("java")
        candidate = Path(found) if found else None
    if candidate is None:
        raise JavaMissingError(
            f"Java {MIN_JAVA}+ is required but no `java` was found on PATH or in JAVA_HOME. "
            "Install a JDK (e.g. `apt-get install openjdk-17-jre-headless`) and try again."
        )
    major = java_major_version(candidate)
    if major < MIN_JAVA:
        raise JavaMissingError(f"{candidate} is Java {major}; Pulse needs Java {MIN_JAVA} or newer.")
    return candidate


def java_major_version(java: Path) -> int:
    """Parse the major version out of `java -version` (e.g. 17 from `openjdk version "17.0.15"`)."""
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise JavaMissingError(f"Could not read the version of {java}: {out.stderr.strip()[:200]}")
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_…".
    return int(match.group(2) or 0) if major == 1 else major
