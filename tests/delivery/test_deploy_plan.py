"""``make deploy-plan ENV=<env>``: what the pipeline would deploy, with no cloud access."""

from __future__ import annotations

import json
import subprocess
import tomllib

import pytest

from tests.delivery.delivery_testkit import REPO_ROOT, run_module

SHA = "0123456789abcdef0123456789abcdef01234567"
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def _plan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_module("delivery.plan", *args, env=env)


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_plan_names_stack_artifacts_and_versions(environment: str) -> None:
    result = _plan("--env", environment, "--sha", SHA, "--registry", "ghcr.io/acme")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"pulse-{environment}   ->  terraform plan -out=tfplan (reviewed), then apply tfplan" in out
    assert f"pulse-{VERSION}-py3-none-any.whl (version {VERSION})" in out
    assert f"ghcr.io/acme/pulse-dashboard:{SHA}" in out
    assert f"pulse-pipeline-{environment}" in out
    assert "first-deploy" in out


def test_plan_as_json_and_github_output(tmp_path) -> None:
    outputs = tmp_path / "out"
    result = _plan(
        "--env", "prod", "--sha", SHA, "--registry", "ghcr.io/acme", "--json", "--github-output", str(outputs)
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["stack"] == "pulse-prod"
    assert plan["image"] == f"ghcr.io/acme/pulse-dashboard:{SHA}"
    assert plan["wheel_uri"].endswith(f"/{SHA}/pulse-{VERSION}-py3-none-any.whl")
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert written["stack"] == "pulse-prod"
    assert written["resource_group"] == "pulse-rg-prod"


def test_plan_reports_a_needed_reset(tmp_path) -> None:
    recorded = tmp_path / "recorded.json"
    recorded.write_text(json.dumps({"state_versions": {"bronze": 999}}))
    blocked = _plan("--env", "dev", "--sha", SHA, "--recorded", str(recorded))
    assert blocked.returncode == 3
    assert "blocked" in blocked.stdout
    assert _plan("--env", "dev", "--sha", SHA, "--recorded", str(recorded), "--reset").returncode == 0


def test_plan_rejects_an_unknown_environment() -> None:
    assert _plan("--env", "qa").returncode == 2


def test_the_plan_names_the_engine_and_its_jar_beside_the_wheel_where_it_runs(monkeypatch) -> None:
    from delivery import plan as deploy_plan
    from infra.config import ENVIRONMENTS, EnvConfig

    for env in ("dev", "staging", "prod"):
        driver = deploy_plan.build_plan(env, SHA, "ghcr.io/acme")
        assert (driver.engine, driver.engine_jar_uri) == ("driver", ""), "no jar where the driver engine runs"
        assert driver.engine_jar_file == f"pulse_engine-{VERSION}.jar"
    staging = ENVIRONMENTS["staging"]
    keyed = EnvConfig.model_validate(
        staging.model_dump() | {"databricks": staging.databricks.model_dump() | {"engine": "keyed"}}
    )
    monkeypatch.setitem(deploy_plan.ENVIRONMENTS, "staging", keyed)
    planned = deploy_plan.build_plan("staging", SHA, "ghcr.io/acme")
    assert planned.engine == "keyed"
    assert planned.engine_jar_uri == planned.wheel_uri.rsplit("/", 1)[0] + f"/pulse_engine-{VERSION}.jar"
    assert "pulse_engine_jar_uri" in deploy_plan.render(
        planned, deploy_plan.states.decide({}, None, False), None
    )
