"""The dashboard image holds the dashboard and the shared core, and nothing of the pipeline.

There is no Docker daemon here, so the image is checked through what builds it: the build stage's COPY
sources in dashboard/Dockerfile, and the two wheels its `pip install ./core ./dashboard` builds from them,
installed into a folder and imported behind a finder that refuses the pipeline and Spark.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.delivery.delivery_testkit import REPO_ROOT

DOCKERFILE = REPO_ROOT / "dashboard" / "Dockerfile"
# What the pipeline is made of: none of it may reach the image.
PIPELINE_MODULES = ("pulse", "pyspark", "delta", "confluent_kafka", "cdktf")


def copied_sources(dockerfile: Path = DOCKERFILE) -> list[str]:
    """The repository paths the build stage copies (COPY without --from)."""
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def top_level_imports(path: Path) -> set[str]:
    """The top-level module of every import in a Python file, lazy ones included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.fixture(scope="module")
def image_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheels of `core` and `dashboard`, built with pypa build from copies of what the image copies."""
    root = tmp_path_factory.mktemp("image")
    wheels = {}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for source in copied_sources():
        shutil.copytree(REPO_ROOT / source, root / "src" / source, ignore=ignore)
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--wheel",
                "--outdir",
                str(root / "dist"),
                str(root / "src" / source),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert built.returncode == 0, (
            f"{source}: wheel build failed:\n{built.stdout[-2000:]}{built.stderr[-2000:]}"
        )
        wheels[source] = max((root / "dist").glob("*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels


def test_the_image_copies_the_core_and_the_dashboard_only() -> None:
    assert sorted(copied_sources()) == ["core", "dashboard"]


def test_nothing_the_image_copies_imports_the_pipeline() -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(top_level_imports(path) & set(PIPELINE_MODULES))
        for source in copied_sources()
        for path in (REPO_ROOT / source).rglob("*.py")
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_image_wheels_hold_one_package_each(image_wheels: dict[str, Path]) -> None:
    packages = {}
    for source, wheel in image_wheels.items():
        names = zipfile.ZipFile(wheel).namelist()
        packages[source] = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"core": {"pulse_core"}, "dashboard": {"pulse_dashboard"}}


def test_the_dashboard_imports_with_the_pipeline_absent(
    image_wheels: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
         "--target", str(target), *map(str, image_wheels.values())],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    modules = sorted(
        f"pulse_dashboard.{p.stem}"
        for p in (target / "pulse_dashboard").glob("*.py")
        if p.stem not in ("app",)
    )
    code = f"""
import importlib, importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {PIPELINE_MODULES!r}:
            raise ImportError(f"{{name}} is not in the dashboard image")
        return None
sys.meta_path.insert(0, Refuse())
sys.path.insert(0, {str(target)!r})
for name in {modules!r}:
    module = importlib.import_module(name)
    assert module.__file__.startswith({str(target)!r}), module.__file__
import pulse_core.settings
assert pulse_core.settings.__file__.startswith({str(target)!r})
print(len({modules!r}))
"""
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert int(ran.stdout.strip()) >= 6, ran.stdout


def test_the_check_catches_a_pipeline_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from pulse.jobs import runner\n    return runner\n")
    assert top_level_imports(sneaky) & set(PIPELINE_MODULES) == {"pulse"}
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        DOCKERFILE.read_text().replace("COPY core ./core", "COPY app ./app\nCOPY core ./core")
    )
    assert "app" in copied_sources(dockerfile)
    assert re.search(r"^COPY core \./core$", DOCKERFILE.read_text(), re.MULTILINE)
