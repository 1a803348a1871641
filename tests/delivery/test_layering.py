"""The layering contracts (import-linter, `[tool.importlinter]` in pyproject.toml) hold, and can fail.

`make lint` runs the same `lint-imports`; here it also runs in `make test`, and over a copy of the tree
with one forbidden import added, to show the contracts see it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.delivery.delivery_testkit import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SOURCES = ("app", "core", "dashboard")


def lint_imports(roots: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the repository's contracts over the packages under `roots`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(roots / source) for source in SOURCES)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO_ROOT / "pyproject.toml")],
        capture_output=True, text=True, timeout=300, env=env, cwd=roots,
    )  # fmt: skip


def copy_tree(target: Path) -> Path:
    for source in SOURCES:
        shutil.copytree(REPO_ROOT / source, target / source, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_dashboard_import_in_the_pipeline_breaks_the_contracts(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    cli = tree / "app" / "pulse" / "cli.py"
    cli.write_text(
        cli.read_text() + "\n\ndef _sneaky():\n    from pulse_dashboard import serve\n\n    return serve\n"
    )
    core = tree / "core" / "pulse_core" / "catalogue.py"
    core.write_text(core.read_text() + "\n\ndef _engine():\n    import pyspark\n\n    return pyspark\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout[-3000:]
    assert "neither imports the other BROKEN" in " ".join(result.stdout.split())
    assert "no engine BROKEN" in " ".join(result.stdout.split())
