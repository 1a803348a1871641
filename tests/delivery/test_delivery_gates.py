"""Defect 5 (delivery): CI gates the deploy, reviewers approve a plan they can read and the apply uses
exactly that plan, and the image is promoted by digest. Each rule runs on the real workflow (no
violation) and on a copy broken the way the defect was (a violation): the rule can fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.delivery.delivery_testkit import (
    CI,
    DEPLOY,
    ci_gate_violations,
    digest_violations,
    load_yaml,
    reviewed_plan_violations,
)


@pytest.fixture
def deploy() -> dict[str, Any]:
    return load_yaml(DEPLOY)


@pytest.fixture
def ci() -> dict[str, Any]:
    return load_yaml(CI)


def test_the_deploy_waits_for_ci(deploy, ci) -> None:
    assert ci_gate_violations(deploy, ci) == []


def test_ci_gate_rule_rejects_a_deploy_that_does_not_wait(deploy, ci) -> None:
    no_ci = copy.deepcopy(deploy)
    del no_ci["jobs"]["ci"]
    no_ci["jobs"]["build"]["needs"] = []
    assert ci_gate_violations(no_ci, ci)
    unlinked = copy.deepcopy(deploy)
    unlinked["jobs"]["build"].pop("needs")
    assert any("build job does not wait" in p for p in ci_gate_violations(unlinked, ci))
    not_callable = copy.deepcopy(ci)
    not_callable["on"].pop("workflow_call")
    assert ci_gate_violations(deploy, not_callable)


def test_every_environment_applies_the_plan_its_reviewers_read(deploy) -> None:
    assert reviewed_plan_violations(deploy) == []


@pytest.mark.parametrize(
    "mutation", ["auto-approve", "plan behind the gate", "apply plans again", "no hash check", "no plan job"]
)
def test_reviewed_plan_rule_rejects(deploy, mutation: str) -> None:
    broken = copy.deepcopy(deploy)
    jobs = broken["jobs"]
    if mutation == "auto-approve":
        jobs["deploy-prod"]["steps"].append({"name": "deploy", "run": 'cdktf deploy "$STACK" --auto-approve'})
    elif mutation == "plan behind the gate":
        jobs["plan-prod"]["environment"] = {"name": "prod"}
    elif mutation == "apply plans again":
        jobs["deploy-prod"]["steps"].append({"name": "replan", "run": "terraform plan -out=tfplan"})
    elif mutation == "no hash check":
        step = next(s for s in jobs["deploy-prod"]["steps"] if s.get("id") == "deploy")
        step["with"].pop("plan-sha256")
    else:
        jobs["deploy-staging"]["needs"] = ["build", "deploy-dev"]
    assert reviewed_plan_violations(broken), mutation


def test_the_prod_plan_is_made_before_the_approval_and_in_a_different_environment(deploy) -> None:
    plan, apply = deploy["jobs"]["plan-prod"], deploy["jobs"]["deploy-prod"]
    assert apply["environment"]["name"] == "prod"
    assert plan["environment"]["name"] == "prod-plan"
    assert "plan-prod" in apply["needs"]


def test_the_image_is_promoted_by_digest(deploy) -> None:
    assert digest_violations(deploy) == []


@pytest.mark.parametrize("mutation", ["tag output", "tag promoted"])
def test_digest_rule_rejects_a_mutable_tag(deploy, mutation: str) -> None:
    broken = copy.deepcopy(deploy)
    if mutation == "tag output":
        broken["jobs"]["build"]["outputs"]["image"] = "${{ steps.names.outputs.image }}"
    else:
        step = next(s for s in broken["jobs"]["deploy-staging"]["steps"] if s.get("id") == "deploy")
        step["with"]["image"] = "ghcr.io/org/pulse-dashboard:latest"
    assert digest_violations(broken)
