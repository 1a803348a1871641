"""Defect 10: on a deploy that resets checkpoints, the streaming job stays paused until the reset completed.

Terraform rewrites the job on every deploy (its wheel path changes with each commit), pause status
included. So the plan of a reset deploy must itself keep the job PAUSED (`scripts/hold_paused.py`, run on
the synthesized stack before `terraform plan`), and the rollout resumes the *configured* status only
after the reset run succeeded; a failed reset leaves the job paused, and a re-run plans it paused again.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from tests.delivery.delivery_testkit import REPO_ROOT, load_script, load_yaml

hold = load_script("hold_paused")
PLAN_ACTION = REPO_ROOT / ".github" / "actions" / "plan-env" / "action.yml"
DEPLOY_ACTION = REPO_ROOT / ".github" / "actions" / "deploy-env" / "action.yml"
DBX = REPO_ROOT / ".github" / "actions" / "deploy-env" / "dbx.sh"


def _stack(jobs: dict[str, dict[str, Any]], stack: str) -> dict[str, Any]:
    bodies = {key.split("/", 1)[1]: body for key, body in jobs.items() if key.startswith(f"{stack}/")}
    return {"resource": {"databricks_job": copy.deepcopy(bodies)}}


def _pipeline(stack: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in stack["resource"]["databricks_job"].values() if "pipeline" in b["name"])


def test_the_plan_of_a_reset_keeps_the_running_job_paused(synthesized_jobs) -> None:
    stack = _stack(synthesized_jobs, "pulse-prod")
    job = _pipeline(stack)
    others = {k: copy.deepcopy(v) for k, v in stack["resource"]["databricks_job"].items() if v is not job}
    assert others
    configured = hold.hold_paused(stack, job["name"])
    assert configured == "UNPAUSED"  # prod runs the pipeline
    paused = [b for name in hold.PAUSABLE_BLOCKS for b in ([job.get(name)] if job.get(name) else [])]
    assert paused
    assert all(block["pause_status"] == "PAUSED" for block in paused)
    # Only the streaming job is held; the maintenance job keeps its schedule.
    assert {k: v for k, v in stack["resource"]["databricks_job"].items() if v is not job} == others


def test_hold_reports_a_paused_configuration_as_paused(synthesized_jobs) -> None:
    stack = _stack(synthesized_jobs, "pulse-dev")
    job = _pipeline(stack)
    statuses = {b.get("pause_status") for n in hold.PAUSABLE_BLOCKS if isinstance(b := job.get(n), dict)}
    expected = "UNPAUSED" if "UNPAUSED" in statuses else "PAUSED"
    assert hold.hold_paused(stack, job["name"]) == expected


def test_hold_refuses_an_unknown_job(synthesized_jobs) -> None:
    with pytest.raises(hold.HoldError):
        hold.hold_paused(_stack(synthesized_jobs, "pulse-prod"), "no-such-job")


def test_hold_cli_rewrites_the_stack_and_reports_the_configured_status(synthesized_jobs, tmp_path) -> None:
    stack = _stack(synthesized_jobs, "pulse-staging")
    name = _pipeline(stack)["name"]
    path, out = tmp_path / "cdk.tf.json", tmp_path / "github-output"
    path.write_text(json.dumps(stack))
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "hold_paused.py"), str(path), "--job", name,
         "--github-output", str(out)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "pipeline_pause=UNPAUSED\n"
    assert _pipeline(json.loads(path.read_text()))["continuous"]["pause_status"] == "PAUSED"


def test_the_plan_job_holds_the_job_before_it_plans_when_a_reset_is_due() -> None:
    steps = load_yaml(PLAN_ACTION)["runs"]["steps"]
    ids = [s.get("id") for s in steps]
    held = steps[ids.index("hold")]
    assert "scripts/hold_paused.py" in held["run"]
    assert '"cdktf.out/stacks/$STACK/cdk.tf.json"' in held["run"]  # the file terraform plans
    assert "steps.state.outputs.reset_jobs" in held["env"]["RESET_JOBS"]
    assert 'if [ -n "$RESET_JOBS" ]' in held["run"]
    synth = next(i for i, s in enumerate(steps) if "python infra/main.py" in s.get("run", ""))
    assert ids.index("state") < synth < ids.index("hold") < ids.index("plan")
    assert 'dir="cdktf.out/stacks/$STACK"' in steps[ids.index("plan")]["run"]


def test_the_rollout_resumes_the_configured_status_only_after_the_reset() -> None:
    action = load_yaml(DEPLOY_ACTION)
    rollout = next(s for s in action["runs"]["steps"] if 'dbx.sh" rollout' in s.get("run", ""))
    assert rollout["env"]["PIPELINE_PAUSE"] == "${{ inputs.pipeline-pause }}"
    assert rollout["env"]["RESET_JOBS"] == "${{ inputs.reset-jobs }}"
    script = DBX.read_text()
    reset_branch = script[
        script.index('if [ -n "${RESET_JOBS:-}" ]; then') : script.index("  else\n    pause=")
    ]
    assert "jobs/get" not in reset_branch, "the reset branch must not resume with the live (held) status"
    order = [
        reset_branch.index(x)
        for x in ('set_pause "$id" PAUSED', "reset_checkpoints", 'set_pause "$id" "$pause"')
    ]
    assert order == sorted(order)
    assert "set -euo pipefail" in script  # a failed reset run stops the script with the job paused
