"""The keyed engine's operator jar is built once beside the wheel (`python -m delivery.engine_jar`), from the
checkout's Java sources against the pinned pyspark, as the build job builds it."""

from __future__ import annotations

import tomllib
import zipfile

import pytest

from delivery.engine_jar import pyspark_requirement
from tests.delivery.delivery_testkit import ACTIONS_DIR, REPO_ROOT, WORKFLOWS_DIR, load_yaml, run_module

pytestmark = pytest.mark.artifact
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_the_jar_is_named_for_the_version_and_holds_the_operator(tmp_path) -> None:
    result = run_module("delivery.engine_jar", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    jar = tmp_path / f"pulse_engine-{PROJECT['version']}.jar"
    assert result.stdout.strip() == str(jar)
    assert "pulse/engine/ViewerChanges.class" in zipfile.ZipFile(jar).namelist()


def test_the_build_installs_the_pipelines_own_pyspark() -> None:
    assert pyspark_requirement() in PROJECT["optional-dependencies"]["pipeline"]
    printed = run_module("delivery.engine_jar", "--requirement")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == pyspark_requirement()


def _run_lines(steps: list[dict]) -> str:
    return "\n".join(step.get("run", "") for step in steps)


def test_the_build_job_builds_the_jar_once_and_the_deploy_stages_it_where_it_runs() -> None:
    workflow = load_yaml(WORKFLOWS_DIR / "deploy.yml")
    build = workflow["jobs"]["build"]["steps"]
    assert "python -m delivery.engine_jar --out dist" in _run_lines(build)
    (upload,) = [s for s in build if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["name"] == "pulse-wheel"
    assert "dist/*.jar" in upload["with"]["path"].split(), "the jar travels with the wheel, built once"
    plan = load_yaml(ACTIONS_DIR / "plan-env" / "action.yml")["runs"]["steps"]
    (terraform_plan,) = [s for s in plan if "TF_VAR_pulse_wheel_uri" in s.get("env", {})]
    assert terraform_plan["env"]["TF_VAR_pulse_engine_jar_uri"] == "${{ steps.names.outputs.engine_jar_uri }}"
    deploy = _run_lines(load_yaml(ACTIONS_DIR / "deploy-env" / "action.yml")["runs"]["steps"])
    jar_args = '${ENGINE_JAR_URI:+--engine-jar "$ENGINE_JAR_PATH" --engine-jar-uri "$ENGINE_JAR_URI"}'
    for command in ("stage-wheel", "rollout"):
        call = deploy[deploy.index(f"python -m delivery.databricks {command}") :].split("\n\n")[0]
        assert jar_args in call, command
    smoke = deploy[deploy.index("python -m delivery.databricks smoke") :]
    assert '${ENGINE_JAR_URI:+--engine-jar-uri "$ENGINE_JAR_URI"}' in smoke
