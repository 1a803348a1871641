"""Issue 27 in the deploy: the plan gets the dashboard's sign-in inputs from each environment's secrets,
puts a failed Terraform check (a public dev dashboard) in front of the reviewers, and the deploy checks that
a request that did not sign in never gets the page. Each rule also runs on a copy broken the way a deploy
without it would be.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

import pytest

from delivery.plan import build_plan, dashboard_access, render
from delivery.state_versions import Action, Decision
from tests.delivery.delivery_testkit import DEPLOY, DEPLOY_ACTION, ENVIRONMENTS, PLAN_ACTION, load_yaml

SIGN_IN_INPUTS = {
    "dashboard-auth-client-id": ("TF_VAR_dashboard_auth_client_id", "DASHBOARD_AUTH_CLIENT_ID"),
    "dashboard-auth-client-secret": ("TF_VAR_dashboard_auth_client_secret", "DASHBOARD_AUTH_CLIENT_SECRET"),
    "dashboard-viewer-group-id": ("TF_VAR_dashboard_viewer_group_id", "DASHBOARD_VIEWER_GROUP_ID"),
}


def _step(steps: list[dict[str, Any]], pattern: str) -> dict[str, Any]:
    found = [step for step in steps if re.search(pattern, step.get("run", ""))]
    assert len(found) == 1, f"expected one step running {pattern}, found {len(found)}"
    return found[0]


def sign_in_input_violations(plan_action: dict[str, Any], deploy: dict[str, Any]) -> list[str]:
    """Each sign-in input reaches `terraform plan` as its TF_VAR_, from the environment's own secret."""
    problems = []
    planned = _step(plan_action["runs"]["steps"], r"terraform -chdir=\S+ plan").get("env", {})
    for name, (tf_var, secret) in SIGN_IN_INPUTS.items():
        if name not in plan_action["inputs"] or planned.get(tf_var) != f"${{{{ inputs.{name} }}}}":
            problems.append(f"plan-env: {tf_var} is not the input {name}")
        for env in ENVIRONMENTS:
            (step,) = [s for s in deploy["jobs"][f"plan-{env}"]["steps"] if s.get("id") == "plan"]
            if step["with"].get(name) != f"${{{{ secrets.{secret} }}}}":
                problems.append(f"plan-{env}: {name} is not the environment secret {secret}")
    return problems


def plan_warning_violations(plan_action: dict[str, Any]) -> list[str]:
    """Failed checks of the saved plan are annotations, lines of the rendered plan and a summary alert."""
    script = _step(plan_action["runs"]["steps"], r"terraform -chdir=\S+ plan")["run"]
    wanted = {
        "reads the failed checks": '.checks[]? | select(.status == "fail")',
        "annotates the run": "::warning::",
        "alerts in the summary": "> [!WARNING]",
        "keeps them in the rendered plan": '> "plan-$ENV_NAME.txt"',
    }
    return [f"plan-env: {what}" for what, fragment in wanted.items() if fragment not in script]


def refusal_check_violations(deploy_action: dict[str, Any]) -> list[str]:
    """Where the dashboard signs users in, the deploy fails unless `/` refuses a request without sign-in."""
    steps = [s for s in deploy_action["runs"]["steps"] if '"$DASHBOARD_URL/")' in s.get("run", "")]
    if len(steps) != 1:
        return [f"deploy-env: {len(steps)} steps request the dashboard's page, expected 1"]
    (step,) = steps
    problems = []
    if step.get("if") != "steps.plan.outputs.dashboard_sign_in == 'true'":
        problems.append("deploy-env: the sign-in check does not follow the config")
    # The `case` pattern the check accepts: a redirect to the sign-in or a 401, never a 200.
    accepted = step["run"].split("case", 1)[-1].split(")", 1)[0]
    if "302" not in accepted or "/.auth/login/aad" not in accepted or "200" in accepted:
        problems.append("deploy-env: the sign-in check does not require a redirect to sign in or a 401")
    if "exit 1" not in step["run"]:
        problems.append("deploy-env: the sign-in check never fails the deploy")
    return problems


def test_the_plan_gets_the_sign_in_inputs_from_each_environment() -> None:
    plan_action, deploy = load_yaml(PLAN_ACTION), load_yaml(DEPLOY)
    assert sign_in_input_violations(plan_action, deploy) == []
    broken = copy.deepcopy(plan_action)
    del _step(broken["runs"]["steps"], r"terraform -chdir=\S+ plan")["env"]["TF_VAR_dashboard_auth_client_id"]
    assert sign_in_input_violations(broken, deploy)
    shared = copy.deepcopy(deploy)
    (step,) = [s for s in shared["jobs"]["plan-prod"]["steps"] if s.get("id") == "plan"]
    step["with"]["dashboard-auth-client-secret"] = "${{ secrets.DEV_DASHBOARD_SECRET }}"
    assert sign_in_input_violations(plan_action, shared)


def test_a_failed_check_is_a_warning_the_reviewers_see() -> None:
    plan_action = load_yaml(PLAN_ACTION)
    assert plan_warning_violations(plan_action) == []
    broken = copy.deepcopy(plan_action)
    step = _step(broken["runs"]["steps"], r"terraform -chdir=\S+ plan")
    step["run"] = step["run"].replace("::warning::", "").replace("> [!WARNING]", "")
    assert plan_warning_violations(broken)


@pytest.mark.parametrize("mutation", [None, "always", "page accepted", "never fails"])
def test_the_deploy_checks_a_request_without_sign_in_never_gets_the_page(mutation: str | None) -> None:
    deploy_action = load_yaml(DEPLOY_ACTION)
    if mutation is None:
        assert refusal_check_violations(deploy_action) == []
        return
    step = next(s for s in deploy_action["runs"]["steps"] if '"$DASHBOARD_URL/")' in s.get("run", ""))
    if mutation == "always":
        step["if"] = "false"
    elif mutation == "page accepted":
        step["run"] = step["run"].replace('"302 "', '"200 "|"302 "')
    else:
        step["run"] = step["run"].replace("exit 1", "true")
    assert refusal_check_violations(deploy_action), mutation


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_deploy_plan_says_who_may_open_the_dashboard(env: str) -> None:
    plan = build_plan(env, "0" * 40, "ghcr.io/acme")
    assert plan.dashboard_sign_in
    text = render(plan, Decision(Action.FIRST_DEPLOY, (), "first deploy"), None)
    assert f"who may open it:    {dashboard_access(plan)}" in text
    assert "once signed in" in text
    assert "dashboard_auth_client_secret" in text
    assert ("dashboard_viewer_group_id" in text) == plan.dashboard_viewer_group
    assert "WARNING" not in text


def test_the_deploy_plan_warns_of_a_public_dashboard() -> None:
    public = dataclasses.replace(build_plan("dev", "0" * 40, "ghcr.io/acme"), dashboard_sign_in=False)
    text = render(public, Decision(Action.FIRST_DEPLOY, (), "first deploy"), None)
    assert "WARNING: anyone who has its URL, with no sign-in" in text
    assert "dashboard_auth_client_id" not in text
    assert "sign-in test" not in text
