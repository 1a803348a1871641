"""Issue 23's rules for the deploy workflow: each test reads the composite actions and fails when the rule
breaks; each rule is also run on a copy broken the way the old action was.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.delivery.delivery_testkit import DEPLOY, DEPLOY_ACTION, PLAN_ACTION, load_yaml

DEPLOY_WORKFLOW = DEPLOY
TERRAFORM = re.compile(r"terraform -chdir=\S+ (plan|apply)\b")


def _steps(path) -> list[dict[str, Any]]:
    return load_yaml(path)["runs"]["steps"]


def _index(steps: list[dict[str, Any]], pattern: str) -> int:
    found = [i for i, step in enumerate(steps) if re.search(pattern, step.get("run", ""))]
    assert found, f"no step runs {pattern}"
    return found[0]


# ------------------------------------------------------------------------------------ defect 2: identity


def identity_violations(plan: list[dict[str, Any]], deploy: list[dict[str, Any]]) -> list[str]:
    """The plan names the identity that plans as the deployer; the apply refuses a plan naming another."""
    problems = []
    planned = plan[_index(plan, r"terraform -chdir=\S+ plan")]
    if planned.get("env", {}).get("TF_VAR_deployer_application_id") != "${{ inputs.azure-client-id }}":
        problems.append("plan: TF_VAR_deployer_application_id is not the identity that plans")
    apply = deploy[_index(deploy, r"terraform -chdir=\S+ apply")]
    script = apply["run"]
    check = script.find(".variables.deployer_application_id.value")
    if check < 0 or "$ARM_CLIENT_ID" not in script[check:] or check > script.find(" apply "):
        problems.append("deploy: the apply does not first check the plan names its own ARM_CLIENT_ID")
    return problems


def test_the_plan_names_the_deploy_identity_and_the_apply_checks_it() -> None:
    plan, deploy = _steps(PLAN_ACTION), _steps(DEPLOY_ACTION)
    assert identity_violations(plan, deploy) == []
    broken = copy.deepcopy(plan)
    del broken[_index(broken, r"terraform -chdir=\S+ plan")]["env"]["TF_VAR_deployer_application_id"]
    assert identity_violations(broken, deploy)


def test_the_plan_takes_the_databricks_account_id_from_the_environment() -> None:
    planned = _steps(PLAN_ACTION)[_index(_steps(PLAN_ACTION), r"terraform -chdir=\S+ plan")]
    assert planned["env"]["TF_VAR_databricks_account_id"] == "${{ inputs.databricks-account-id }}"
    workflow = load_yaml(DEPLOY_WORKFLOW)
    for env in ("dev", "staging", "prod"):
        (step,) = [s for s in workflow["jobs"][f"plan-{env}"]["steps"] if s.get("id") == "plan"]
        assert step["with"]["databricks-account-id"] == "${{ secrets.DATABRICKS_ACCOUNT_ID }}"


# ------------------------------------------------------------------------------ defect 5: fresh tokens


def token_violations(steps: list[dict[str, Any]], name: str) -> list[str]:
    """Databricks calls use a fresh GitHub OIDC token; az after the apply follows a new azure/login."""
    problems = []
    applied = logged_in_since_apply = False
    for step in steps:
        run = step.get("run", "")
        if step.get("uses", "").startswith("azure/login@"):
            logged_in_since_apply = True
        if "python -m delivery.databricks " in run:
            env = step.get("env") or {}
            wanted = {"DATABRICKS_AUTH_TYPE": "github-oidc-azure"}
            if {k: env.get(k) for k in wanted} != wanted or not {"ARM_CLIENT_ID", "ARM_TENANT_ID"} <= set(
                env
            ):
                problems.append(f"{name}: {step.get('name')!r} does not use github-oidc-azure")
        if applied and re.search(r"(^|\s|\$\()az ", run) and not logged_in_since_apply:
            problems.append(f"{name}: {step.get('name')!r} calls az with the assertion of before the apply")
        if re.search(r"terraform -chdir=\S+ apply", run):
            applied, logged_in_since_apply = True, False
    return problems


def test_calls_after_a_long_apply_never_use_an_expired_assertion() -> None:
    assert token_violations(_steps(DEPLOY_ACTION), "deploy-env") == []
    assert token_violations(_steps(PLAN_ACTION), "plan-env") == []
    old = copy.deepcopy(_steps(DEPLOY_ACTION))
    for step in old:
        if "python -m delivery.databricks " in step.get("run", ""):
            step["env"]["DATABRICKS_AUTH_TYPE"] = "azure-cli"
    assert token_violations(old, "old")
    no_relogin = [s for s in _steps(DEPLOY_ACTION) if "again" not in s.get("name", "")]
    assert token_violations(no_relogin, "no relogin")


# --------------------------------------------------------------------------- defect 6: a private image


def test_the_plan_stops_on_an_image_that_cannot_be_pulled_anonymously() -> None:
    steps = _steps(PLAN_ACTION)
    check = _index(steps, r'python -m delivery\.registry check-public "\$IMAGE"')
    assert steps[check]["env"]["IMAGE"] == "${{ inputs.image }}"
    assert check < _index(steps, r"terraform -chdir=\S+ plan")


# ----------------------------------------------------------------------------- defect 9: wheel ordering


def test_the_wheel_is_staged_before_the_apply_repoints_the_jobs() -> None:
    steps = _steps(DEPLOY_ACTION)
    stage = _index(steps, r"python -m delivery\.databricks stage-wheel ")
    assert stage < _index(steps, r"terraform -chdir=\S+ apply")
    assert steps[stage]["env"]["DATABRICKS_HOST"] == "${{ inputs.databricks-host }}"
    plan = load_yaml(PLAN_ACTION)
    assert plan["outputs"]["databricks-host"]["value"] == "${{ steps.state.outputs.databricks_host }}"
    workflow = load_yaml(DEPLOY_WORKFLOW)
    for env in ("dev", "staging", "prod"):
        (step,) = [s for s in workflow["jobs"][f"deploy-{env}"]["steps"] if s.get("id") == "deploy"]
        assert step["with"]["databricks-host"] == f"${{{{ needs.plan-{env}.outputs.databricks-host }}}}"


# --------------------------------------------------------------------------- defect 12: the secret scope


def test_the_plan_checks_the_bootstrap_secret_scope_before_planning() -> None:
    steps = _steps(PLAN_ACTION)
    check = _index(steps, r'python -m delivery\.databricks check-scope --scope "\$SECRET_SCOPE"')
    scope_ref = "${{ steps.names.outputs.secret_scope }}"
    assert steps[check]["env"]["SECRET_SCOPE"] == scope_ref
    assert check < _index(steps, r"terraform -chdir=\S+ plan")
