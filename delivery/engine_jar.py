"""Build the keyed engine's operator jar once, beside the wheel: ``python -m delivery.engine_jar --out dist``.

The deploy's build job runs it after the wheel. The jar is promoted unchanged with the wheel, and the
pipeline's tasks install it where an environment runs the keyed engine (``databricks.engine`` in
infra/config.py; docs/delivery.md). It is compiled from the wheel's own Java sources
(``app/pulse/engine/java``) against the pinned pyspark's jars, as a local session compiles it
(``pulse.engine.build_jar``). Its API calls are the same in Spark 4.0, 4.1 and 4.2 (docs/scale.md).

``--requirement`` prints the pyspark pin the build needs installed (``pyspark==X``), from pyproject.toml.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

from delivery.report import report_failure

# Stdlib only, with `delivery.report`: the build job runs it before it installs anything else.
REPO_ROOT = Path(__file__).resolve().parent.parent


def engine_jar_file_name(version: str) -> str:
    """The jar's file name for the project's version (the deploy plan names it the same way)."""
    return f"pulse_engine-{version}.jar"


def pyspark_requirement(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    """The pipeline's pyspark pin (``pyspark==X``): the jar is compiled against that Spark's jars."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["pipeline"]
    pins = [d for d in dependencies if d.replace(" ", "").startswith("pyspark==")]
    if len(pins) != 1:
        raise ValueError(f"pyproject.toml should pin pyspark exactly once (pyspark==X); found {pins}")
    return pins[0].replace(" ", "")


def build(out: Path) -> Path:
    """Compile the operator into ``out/<engine_jar_file_name>``; returns its path.

    Raises:
        pulse.engine.EngineUnavailableError: no JDK, no pyspark, or the sources do not compile.
    """
    if str(REPO_ROOT / "app") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "app"))  # the checkout's sources, as the wheel holds them
    from pulse import engine

    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    out.mkdir(parents=True, exist_ok=True)
    target = out / engine_jar_file_name(version)
    with tempfile.TemporaryDirectory() as cache:
        shutil.copyfile(engine.build_jar(Path(cache)), target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Builds the jar (exit 0) or prints the pyspark pin; 1 when it cannot be built."""
    parser = argparse.ArgumentParser(
        prog="python -m delivery.engine_jar", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "dist", help="Folder of the build's artifacts."
    )
    parser.add_argument("--requirement", action="store_true", help="Print the pyspark pin, build nothing.")
    args = parser.parse_args(argv)
    try:
        if args.requirement:
            print(pyspark_requirement())
            return 0
        print(build(args.out))
    except (
        ImportError,
        OSError,
        ValueError,
        RuntimeError,
    ) as exc:  # EngineUnavailableError is a RuntimeError
        return report_failure("engine_jar", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
