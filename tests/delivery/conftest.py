"""Session fixtures of the delivery tests: one wheel build and one synthesis per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.delivery_testkit import REPO_ROOT

WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "app", "core")


@dataclass(frozen=True)
class BuiltWheel:
    """The pipeline wheel, built from a copy of the sources, and its parsed metadata.

    Attributes:
        path: The ``.whl`` file.
        unpacked: The wheel extracted (importable with ``PYTHONPATH``).
        names: Every file name inside the wheel.
        metadata: ``Name``, ``Version``... from ``METADATA``.
        entry_points: Group -> name -> ``module:attr`` from ``entry_points.txt``.
    """

    path: Path
    unpacked: Path
    names: list[str]
    metadata: dict[str, str]
    entry_points: dict[str, dict[str, str]]


def _parse_entry_points(text: str) -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = groups.setdefault(line[1:-1], {})
        elif current is not None and "=" in line:
            name, target = (part.strip() for part in line.split("=", 1))
            current[name] = target
    return groups


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> BuiltWheel:
    """Builds the wheel with pypa ``build`` (what the deploy workflow runs) from a copy of the sources."""
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("pypa build is missing: pin `build==1.6.1` in the dev extra (pyproject.toml)")
    root = tmp_path_factory.mktemp("wheel")
    src, dist = root / "src", root / "dist"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in WHEEL_SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=ignore)
        else:
            shutil.copy2(source, src / name)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"wheel build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {wheels}"
    unpacked = root / "unpacked"
    with zipfile.ZipFile(wheels[0]) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata_text = archive.read(f"{dist_info}/METADATA").decode()
        entry_text = (
            archive.read(f"{dist_info}/entry_points.txt").decode()
            if (f"{dist_info}/entry_points.txt" in names)
            else ""
        )
    metadata = {}
    for line in metadata_text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(": ")
        metadata.setdefault(key, value)
    return BuiltWheel(wheels[0], unpacked, names, metadata, _parse_entry_points(entry_text))


@pytest.fixture(scope="session")
def synthesized_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every ``databricks_job`` of every synthesized stack, as ``"<stack>/<logical id>" -> body``.

    Synthesizes once, in this process: when tests/infra ran first, the costly binding imports are shared.
    """
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")
    from infra.main import build_app

    outdir = tmp_path_factory.mktemp("delivery-cdktf-out")
    build_app(outdir=outdir).synth()
    jobs: dict[str, dict[str, Any]] = {}
    for path in sorted((outdir / "stacks").glob("*/cdk.tf.json")):
        resources = json.loads(path.read_text()).get("resource", {}).get("databricks_job", {})
        for logical_id, body in resources.items():
            jobs[f"{path.parent.name}/{logical_id}"] = body
    assert jobs, "the synthesized stacks hold no databricks_job"
    return jobs
