"""Run a test module's `__main__` in a Spark of its own with the benchmarks' JVM operators on the classpath.

A jar on the driver's classpath must be there when the JVM starts, and the tests' shared Spark session
has long started, so a test of a JVM operator runs its Spark work in a child process and reads back the
JSON it prints last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import jvm_build


def run_with_operators(module: str, root: Path, jars_dir: Path) -> Any:
    """`python -m module root` on `local[2]` with the operators' jar; the JSON it printed last."""
    env = os.environ | {
        "PULSE_HOME": str(root / "home"),
        "PULSE_JARS": str(jars_dir),
        "PULSE_SPARK_CONF": jvm_build.spark_conf(),
        "PULSE_SPARK_MASTER": "local[2]",
    }
    done = subprocess.run(
        [sys.executable, "-m", module, str(root)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
