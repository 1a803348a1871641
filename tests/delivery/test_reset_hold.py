"""Defect 10: on a deploy that resets checkpoints, the streaming job stays paused until the reset completed.

Terraform rewrites the job on every deploy (its wheel path changes with each commit), pause status
included. So the plan of a reset deploy must itself keep the job PAUSED (`python -m delivery.hold`, run on
the synthesized stack before `terraform plan`), and the rollout resumes the *configured* status only
after the reset run succeeded; a failed reset leaves the job paused, and a re-run plans it paused again.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from delivery import hold
from tests.delivery.delivery_testkit import DEPLOY_ACTION, PLAN_ACTION, load_yaml, run_module
from tests.delivery.fake_workspace import FakeWorkspace, api_settings, serve

WHEEL_URI = "/Volumes/pulse_prod/deploy/artifacts/wheels/abc/pulse-0.1.0-py3-none-any.whl"


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
    result = run_module("delivery.hold", str(path), "--job", name, "--github-output", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "pipeline_pause=UNPAUSED\n"
    assert _pipeline(json.loads(path.read_text()))["continuous"]["pause_status"] == "PAUSED"


def test_the_plan_job_holds_the_job_before_it_plans_when_a_reset_is_due() -> None:
    steps = load_yaml(PLAN_ACTION)["runs"]["steps"]
    ids = [s.get("id") for s in steps]
    held = steps[ids.index("hold")]
    assert "python -m delivery.hold" in held["run"]
    assert '"cdktf.out/stacks/$STACK/cdk.tf.json"' in held["run"]  # the file terraform plans
    assert "steps.state.outputs.reset_jobs" in held["env"]["RESET_JOBS"]
    assert 'if [ -n "$RESET_JOBS" ]' in held["run"]
    synth = next(i for i, s in enumerate(steps) if "python infra/main.py" in s.get("run", ""))
    assert ids.index("state") < synth < ids.index("hold") < ids.index("plan")
    assert 'dir="cdktf.out/stacks/$STACK"' in steps[ids.index("plan")]["run"]


def test_the_rollout_is_given_the_reset_and_the_configured_status() -> None:
    action = load_yaml(DEPLOY_ACTION)
    rollout = next(s for s in action["runs"]["steps"] if "delivery.databricks rollout" in s.get("run", ""))
    assert rollout["env"]["PIPELINE_PAUSE"] == "${{ inputs.pipeline-pause }}"
    assert rollout["env"]["RESET_JOBS"] == "${{ inputs.reset-jobs }}"
    assert '--reset-jobs "$RESET_JOBS"' in rollout["run"]
    assert '--pause "$PIPELINE_PAUSE"' in rollout["run"]


# ------------------------------------------------- the rollout (delivery.databricks) against a fake workspace


def _rollout(
    stack: dict[str, Any], applied: str, reset_result: str, tmp_path: Path, pause: str
) -> tuple[FakeWorkspace, subprocess.CompletedProcess[str]]:
    """Runs the rollout of a reset on a workspace holding the streaming job with the ``applied`` status."""
    settings = api_settings(_pipeline(stack), WHEEL_URI)
    settings["continuous"]["pause_status"] = applied
    workspace = FakeWorkspace(run_script=[("TERMINATED", reset_result)])
    workspace.add_job(7, settings, run_as=_pipeline(stack)["run_as"]["service_principal_name"])
    wheel = tmp_path / "pulse-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    with serve(workspace) as databricks_env:
        result = run_module(
            "delivery.databricks", "rollout", "--wheel", str(wheel), "--wheel-uri", WHEEL_URI,
            "--job", settings["name"], "--commit", "a" * 40, "--reset-jobs", "pipeline", "--pause", pause,
            env={**clean, **databricks_env, "DATABRICKS_CONFIG_FILE": str(tmp_path / "none")},
        )  # fmt: skip
    return workspace, result


def test_a_failed_reset_and_its_rerun_never_run_the_job_on_old_checkpoints(
    synthesized_jobs, tmp_path
) -> None:
    stack = _stack(synthesized_jobs, "pulse-prod")
    name = _pipeline(stack)["name"]
    configured = hold.hold_paused(stack, name)  # what the plan job does when a reset is due
    applied = _pipeline(stack)["continuous"]["pause_status"]  # what terraform then sets
    first, failed = _rollout(stack, applied, "FAILED", tmp_path, configured)
    assert failed.returncode != 0
    assert first.pause_history[7][-1] == "PAUSED", first.pause_history  # the failed reset leaves it paused
    assert not first.unpaused_before_the_reset(7), first.pause_history
    # The re-run: no record was written, so the check decides on a reset again and the plan holds again.
    stack = _stack(synthesized_jobs, "pulse-prod")
    hold.hold_paused(stack, name)
    again, done = _rollout(
        stack, _pipeline(stack)["continuous"]["pause_status"], "SUCCESS", tmp_path, configured
    )
    assert done.returncode == 0, done.stderr
    assert not again.unpaused_before_the_reset(7), again.pause_history
    assert again.pause_history[7][-1] == configured == "UNPAUSED", again.pause_history


def test_without_the_hold_terraform_unpauses_the_job_before_the_reset(synthesized_jobs, tmp_path) -> None:
    # The defect: planning the stack as configured makes terraform set UNPAUSED before the reset repeats.
    stack = _stack(synthesized_jobs, "pulse-prod")
    applied = _pipeline(stack)["continuous"]["pause_status"]
    workspace, result = _rollout(stack, applied, "SUCCESS", tmp_path, "UNPAUSED")
    assert result.returncode == 0, result.stderr
    assert workspace.unpaused_before_the_reset(7)
