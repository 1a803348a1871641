"""Policy: checkov passes every synthesized stack with zero failed checks, skips only from one file.

checkov cannot share a venv with pytest 9 (checkov pins ``packaging<24``, pytest needs ``>=24``), so it
runs as a separate tool: ``$CHECKOV_BIN``, else ``.venv-checkov/bin/checkov`` in the repository, else
``checkov`` on ``PATH``. A missing checkov fails the test rather than skipping it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from infra_testkit import ENV_NAMES, REPO_ROOT, SynthesizedStack

pytestmark = pytest.mark.artifact  # runs checkov, a separate tool: not in the fast loop

SKIPS_FILE = REPO_ROOT / "infra" / "checkov-skips.toml"


def checkov_binary() -> str:
    """Locates the checkov executable, or fails the test with how to install it."""
    candidates = [os.environ.get("CHECKOV_BIN"), str(REPO_ROOT / ".venv-checkov" / "bin" / "checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("checkov")
    if found is None:
        pytest.fail(
            "checkov not found: install it in its own venv, e.g. "
            "`python -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30`, "
            "or point CHECKOV_BIN at it"
        )
    return found


def load_skips() -> dict[str, str]:
    """Check id -> reason, from ``infra/checkov-skips.toml``."""
    entries = tomllib.loads(SKIPS_FILE.read_text())["skip"]
    return {entry["id"]: entry["reason"] for entry in entries}


def run_checkov(path: Path, skip_ids: list[str]) -> dict[str, Any]:
    """Runs checkov on one ``cdk.tf.json`` and returns its JSON report."""
    command = [
        checkov_binary(),
        "-f",
        str(path),
        "--framework",
        "terraform_json",
        "--skip-download",
        "--output",
        "json",
    ]
    if skip_ids:
        command += ["--skip-check", ",".join(skip_ids)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}): {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["check_type"] == "terraform_json"
    assert (result.returncode == 0) == (report["summary"]["failed"] == 0)
    return report


@cache
def _unskipped_failures(path: Path) -> frozenset[str]:
    report = run_checkov(path, [])
    return frozenset(check["check_id"] for check in report["results"]["failed_checks"])


def test_skips_file_lists_each_check_once_with_a_reason() -> None:
    entries = tomllib.loads(SKIPS_FILE.read_text())["skip"]
    ids = [entry["id"] for entry in entries]
    assert len(ids) == len(set(ids))
    for entry in entries:
        assert entry["id"].startswith(("CKV_", "CKV2_"))
        assert len(entry["reason"].split()) >= 15, f"{entry['id']} needs a written reason"


@pytest.mark.parametrize("env", ENV_NAMES)
def test_checkov_reports_zero_failed_checks(synthesized: dict[str, SynthesizedStack], env: str) -> None:
    report = run_checkov(synthesized[env].path, sorted(load_skips()))
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] >= 50, "checkov scanned suspiciously little"
    assert report["summary"]["parsing_errors"] == 0


@pytest.mark.parametrize("env", ENV_NAMES)
def test_every_unskipped_failure_is_a_documented_skip(
    synthesized: dict[str, SynthesizedStack], env: str
) -> None:
    assert _unskipped_failures(synthesized[env].path) <= set(load_skips())


def test_no_stale_skips(synthesized: dict[str, SynthesizedStack]) -> None:
    failing_somewhere = set().union(*(_unskipped_failures(s.path) for s in synthesized.values()))
    assert set(load_skips()) <= failing_somewhere, "a skip no longer matches a failing check: remove it"
