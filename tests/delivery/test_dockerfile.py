"""The dashboard image's Dockerfile passes checkov's dockerfile framework with zero failed checks.

checkov cannot share the main venv (it pins ``packaging<24``), so it runs from ``$CHECKOV_BIN`` or
``.venv-checkov/bin/checkov``. Skips, if ever needed, live only in ``dockerfile-checkov-skips.toml``
with a reason, and a skip whose check would pass anyway fails the test.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.delivery_testkit import REPO_ROOT, tool

pytestmark = pytest.mark.artifact  # runs checkov, a separate tool: not in the fast loop

DOCKERFILE = REPO_ROOT / "dashboard" / "Dockerfile"
SKIPS_FILE = Path(__file__).with_name("dockerfile-checkov-skips.toml")


def load_skips() -> dict[str, str]:
    """Check id -> reason."""
    entries = tomllib.loads(SKIPS_FILE.read_text()).get("skip", [])
    for entry in entries:
        assert entry.get("id"), f"skip entry without id: {entry}"
        assert entry.get("reason"), f"skip entry without reason: {entry}"
    return {entry["id"]: entry["reason"] for entry in entries}


def run_checkov(path: Path, skip_ids: list[str]) -> dict[str, Any]:
    """checkov's JSON report of one Dockerfile."""
    binary = tool("checkov", "CHECKOV_BIN", REPO_ROOT / ".venv-checkov" / "bin" / "checkov")
    if binary is None:
        pytest.fail("checkov not found: `make setup` installs checkov==3.3.30 into .venv-checkov")
    command = [binary, "-f", str(path), "--framework", "dockerfile", "--skip-download", "--output", "json"]
    if skip_ids:
        command += ["--skip-check", ",".join(skip_ids)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def failed(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['check_name']} (line {c['file_line_range'][0]})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]


def test_dockerfile_passes_checkov() -> None:
    report = run_checkov(DOCKERFILE, sorted(load_skips()))
    assert report["summary"]["passed"] > 0, "checkov ran no dockerfile check"
    assert failed(report) == [], "checkov fails dashboard/Dockerfile:\n" + "\n".join(failed(report))


def test_every_skip_is_still_needed() -> None:
    skips = load_skips()
    if not skips:
        return
    failing = {entry.split()[0] for entry in failed(run_checkov(DOCKERFILE, []))}
    assert set(skips) <= failing, f"stale skips (the check passes now): {sorted(set(skips) - failing)}"


def test_checkov_rejects_an_unsafe_dockerfile(tmp_path) -> None:
    unsafe = tmp_path / "Dockerfile"
    unsafe.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python\n")
    ids = {entry.split()[0] for entry in failed(run_checkov(unsafe, []))}
    assert {"CKV_DOCKER_7", "CKV_DOCKER_3"} <= ids
