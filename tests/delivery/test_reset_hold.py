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


# ---------------------------------------------------------------- dbx.sh rollout against a fake workspace


class FakeWorkspace:
    """The few Databricks REST endpoints `dbx.sh rollout` calls, with one job whose pause status is logged.

    `history` holds every pause status the job had, in order, and `RESET` once the reset run succeeded.
    """

    def __init__(self, name: str, pause: str, reset_result: str) -> None:
        self.job = {
            "job_id": 7,
            "settings": {
                "name": name,
                "continuous": {"pause_status": pause, "task_retry_mode": "ON_FAILURE"},
                "job_clusters": [{"job_cluster_key": "pipeline", "new_cluster": {"spark_version": "17.3"}}],
            },
        }
        self.reset_result = reset_result
        self.history: list[str] = [pause]

    def handle(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        route = path.split("?")[0]
        if route.startswith("/api/2.0/fs/files/Volumes/") and method == "PUT":
            return {}
        if route in (
            "/api/2.0/workspace/mkdirs",
            "/api/2.0/workspace/import",
            "/api/2.1/jobs/runs/cancel-all",
        ):
            return {}
        if route == "/api/2.1/jobs/list":
            return {"jobs": [{"job_id": 7}]}
        if route == "/api/2.1/jobs/get":
            return self.job
        if route == "/api/2.1/jobs/update":
            for block, settings in body["new_settings"].items():
                self.job["settings"][block] = settings
            self.history.append(self.job["settings"]["continuous"]["pause_status"])
            return {}
        if route == "/api/2.1/jobs/runs/list":
            return {"runs": []}
        if route == "/api/2.1/jobs/runs/submit":
            return {"run_id": 99}
        if route == "/api/2.1/jobs/runs/get":
            if self.reset_result == "SUCCESS" and "RESET" not in self.history:
                self.history.append("RESET")
            return {"state": {"life_cycle_state": "TERMINATED", "result_state": self.reset_result}}
        raise AssertionError(f"unexpected call {method} {path}")

    def unpaused_before_the_reset(self) -> bool:
        done = self.history.index("RESET") if "RESET" in self.history else len(self.history)
        return "UNPAUSED" in self.history[:done]


def _rollout(workspace: FakeWorkspace, tmp_path, pause: str) -> subprocess.CompletedProcess[str]:
    import http.server
    import os
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            # A Files API upload (`/api/2.0/fs/files/Volumes/...`) sends the file itself, not JSON.
            binary = self.path.startswith("/api/2.0/fs/files/")
            body = {"bytes": len(raw)} if binary else json.loads(raw or b"{}")
            payload = json.dumps(workspace.handle(self.command, self.path, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    (shims / "az").write_text("#!/bin/sh\necho fake-token\n")
    (shims / "az").chmod(0o755)
    wheel = tmp_path / "pulse-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    try:
        return subprocess.run(
            ["bash", str(DBX), "rollout"],
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "PATH": f"{shims}:{os.environ['PATH']}",
                "DATABRICKS_URL": f"http://127.0.0.1:{server.server_port}",
                "WHEEL_PATH": str(wheel),
                "WHEEL_URI": "/Volumes/pulse/deploy/artifacts/abc/pulse-0.1.0-py3-none-any.whl",
                "PIPELINE_JOB": workspace.job["settings"]["name"],
                "RESET_JOBS": "pipeline",
                "PIPELINE_PAUSE": pause,
                "COMMIT": "a" * 40,
            },
        )
    finally:
        server.shutdown()


def test_a_failed_reset_and_its_rerun_never_run_the_job_on_old_checkpoints(
    synthesized_jobs, tmp_path
) -> None:
    stack = _stack(synthesized_jobs, "pulse-prod")
    name = _pipeline(stack)["name"]
    configured = hold.hold_paused(stack, name)  # what the plan job does when a reset is due
    applied = _pipeline(stack)["continuous"]["pause_status"]  # what terraform then sets
    first = FakeWorkspace(name, applied, reset_result="FAILED")
    failed = _rollout(first, tmp_path, configured)
    assert failed.returncode != 0
    assert first.history[-1] == "PAUSED", first.history  # the failed reset leaves the job paused
    assert not first.unpaused_before_the_reset(), first.history
    # The re-run: no record was written, so the check decides on a reset again and the plan holds again.
    stack = _stack(synthesized_jobs, "pulse-prod")
    hold.hold_paused(stack, name)
    again = FakeWorkspace(name, _pipeline(stack)["continuous"]["pause_status"], reset_result="SUCCESS")
    done = _rollout(again, tmp_path, configured)
    assert done.returncode == 0, done.stderr
    assert not again.unpaused_before_the_reset(), again.history
    assert again.history[-1] == configured == "UNPAUSED", again.history


def test_without_the_hold_terraform_unpauses_the_job_before_the_reset(synthesized_jobs, tmp_path) -> None:
    # The defect: planning the stack as configured makes terraform set UNPAUSED before the reset repeats.
    stack = _stack(synthesized_jobs, "pulse-prod")
    workspace = FakeWorkspace(
        _pipeline(stack)["name"], _pipeline(stack)["continuous"]["pause_status"], "SUCCESS"
    )
    assert _rollout(workspace, tmp_path, "UNPAUSED").returncode == 0
    assert workspace.unpaused_before_the_reset()
