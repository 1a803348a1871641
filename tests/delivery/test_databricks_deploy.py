"""The deploy's Databricks calls (``python -m delivery.databricks``) against a local fake workspace.

The SDK runs unmodified and speaks HTTP to ``tests/delivery/fake_workspace.py``; the tests assert what it
sent, in which order, and how a failure reaches the log (one ``error:`` line, a non-zero exit).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from delivery import databricks as dbx
from tests.delivery.delivery_testkit import REPO_ROOT
from tests.delivery.fake_workspace import FakeWorkspace, api_settings, serve

WHEEL_URI = "/Volumes/pulse_prod/deploy/artifacts/wheels/abc123/pulse-0.1.0-py3-none-any.whl"
RECORD = "/Volumes/pulse_prod/deploy/artifacts/deploy-record.json"
COMMIT = "abc123"
PIPELINE_ID, MAINTENANCE_ID = 7, 8


def _body(synthesized_jobs: dict[str, dict[str, Any]], stack: str, kind: str) -> dict[str, Any]:
    return next(b for k, b in synthesized_jobs.items() if k.startswith(f"{stack}/") and kind in k)


def _job(synthesized_jobs: dict[str, dict[str, Any]], stack: str, kind: str) -> dict[str, Any]:
    return api_settings(_body(synthesized_jobs, stack, kind), WHEEL_URI)


@pytest.fixture
def workspace(synthesized_jobs) -> FakeWorkspace:
    """Prod's two jobs as terraform left them: the streaming job continuous and UNPAUSED."""
    ws = FakeWorkspace()
    for job_id, kind in ((PIPELINE_ID, "streaming-job"), (MAINTENANCE_ID, "maintenance-job")):
        run_as = _body(synthesized_jobs, "pulse-prod", kind)["run_as"]["service_principal_name"]
        ws.add_job(job_id, _job(synthesized_jobs, "pulse-prod", kind), run_as=run_as)
    return ws


def run_cli(
    ws: FakeWorkspace, tmp_path: Path, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m delivery.databricks ARGS`` from the repository root, pointed at the fake workspace
    (with the workspace's token unless another ``token`` is given)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "AZURE_"))}
    with serve(ws) as databricks_env:
        return subprocess.run(
            [sys.executable, "-m", "delivery.databricks", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={
                **clean,
                **databricks_env,
                "DATABRICKS_CONFIG_FILE": str(tmp_path / "no-databrickscfg"),
                "GITHUB_ACTIONS": "",
                **({"DATABRICKS_TOKEN": token} if token else {}),
            },
        )


def _wheel(tmp_path: Path) -> Path:
    wheel = tmp_path / "pulse-0.1.0-py3-none-any.whl"
    wheel.write_bytes(os.urandom(2048))
    return wheel


def _rollout_args(wheel: Path, name: str, *extra: str) -> list[str]:
    return [
        "rollout",
        "--wheel",
        str(wheel),
        "--wheel-uri",
        WHEEL_URI,
        "--job",
        name,
        "--commit",
        COMMIT,
        *extra,
    ]


def _index(routes: list[str], route: str, start: int = 0) -> int:
    return routes.index(route, start)


# --------------------------------------------------------------------------------------------- rollout


def test_a_restart_uploads_the_wheel_then_cancels_the_run(workspace: FakeWorkspace, tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    result = run_cli(workspace, tmp_path, *_rollout_args(wheel, name))
    assert result.returncode == 0, result.stderr
    assert workspace.files[WHEEL_URI] == wheel.read_bytes()
    routes = workspace.routes()
    assert _index(routes, f"PUT /api/2.0/fs/files{WHEEL_URI}") < _index(
        routes, "POST /api/2.2/jobs/runs/cancel-all"
    )
    assert workspace.bodies("POST /api/2.2/jobs/runs/cancel-all") == [{"job_id": PIPELINE_ID}]
    # A restart changes nothing but the pause status, and puts it back as it was.
    assert workspace.pause_history[PIPELINE_ID] == ["UNPAUSED", "PAUSED", "UNPAUSED"]
    assert not workspace.bodies("POST /api/2.2/jobs/runs/submit")
    assert f"uploaded {wheel.name} to {WHEEL_URI}" in result.stderr
    assert "restarted from its checkpoints" in result.stderr


def test_a_reset_pauses_resets_on_the_jobs_cluster_polls_then_resumes(
    workspace: FakeWorkspace, tmp_path: Path
) -> None:
    workspace.run_script = [("PENDING", None), ("RUNNING", None), ("TERMINATED", "SUCCESS")]
    settings = workspace.jobs[PIPELINE_ID]["settings"]
    args = _rollout_args(
        _wheel(tmp_path), settings["name"], "--reset-jobs", "pipeline bronze", "--pause", "UNPAUSED"
    )
    result = run_cli(workspace, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    routes = workspace.routes()
    upload = _index(routes, f"PUT /api/2.0/fs/files{WHEEL_URI}")
    pause = _index(routes, "POST /api/2.2/jobs/update")
    listed = _index(routes, "GET /api/2.2/jobs/runs/list", pause)
    cancel = _index(routes, "POST /api/2.2/jobs/runs/cancel-all")
    submit = _index(routes, "POST /api/2.2/jobs/runs/submit")
    resume = _index(routes, "POST /api/2.2/jobs/update", submit)
    assert upload < pause < listed < cancel < submit < resume
    # Polled until TERMINATED: every state of the script was read before the job resumed.
    assert routes[submit + 1 : resume].count("GET /api/2.2/jobs/runs/get") == 3
    assert [b["new_settings"] for b in workspace.bodies("POST /api/2.2/jobs/update")] == [
        {"continuous": {**settings["continuous"], "pause_status": "PAUSED"}},
        {"continuous": {**settings["continuous"], "pause_status": "UNPAUSED"}},
    ]
    (submitted,) = workspace.bodies("POST /api/2.2/jobs/runs/submit")
    (task,) = submitted["tasks"]
    assert submitted["run_name"] == f"pulse state reset {COMMIT}"
    assert task["new_cluster"] == settings["job_clusters"][0]["new_cluster"]  # inside the VNet, PULSE_LAKE
    assert task["libraries"] == [{"whl": WHEEL_URI}]
    assert task["python_wheel_task"] == {
        "package_name": settings["tasks"][0]["python_wheel_task"]["package_name"],
        "entry_point": settings["tasks"][0]["python_wheel_task"]["entry_point"],
        "parameters": ["reset-checkpoints", f"--commit={COMMIT}", "pipeline", "bronze"],
    }
    assert "spark_python_task" not in task
    # Paused from before the cancel until the reset run succeeded; resumed as configured after it.
    assert workspace.pause_history[PIPELINE_ID] == ["UNPAUSED", "PAUSED", "RESET", "UNPAUSED"]
    assert "RUNNING" in result.stderr  # progress while it waits


@pytest.mark.parametrize(
    ("script", "shown"),
    [
        ([("RUNNING", None), ("TERMINATED", "FAILED")], "ended TERMINATED/FAILED"),
        ([("INTERNAL_ERROR", None)], "INTERNAL_ERROR"),
    ],
)
def test_a_failed_reset_run_is_one_error_line_and_leaves_the_job_paused(
    workspace: FakeWorkspace, tmp_path: Path, script: list[tuple[str, str | None]], shown: str
) -> None:
    workspace.run_script = script
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    args = _rollout_args(_wheel(tmp_path), name, "--reset-jobs", "refine", "--pause", "UNPAUSED")
    result = run_cli(workspace, tmp_path, *args)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: rollout: state reset run 1000")
    assert shown in errors[0]
    assert "Traceback" not in result.stderr
    assert workspace.pause_history[PIPELINE_ID][-1] == "PAUSED"
    assert len(workspace.bodies("POST /api/2.2/jobs/update")) == 1, "never resumed after a failed reset"


def test_a_reset_without_the_configured_status_is_refused_before_the_job_changes(
    workspace: FakeWorkspace, tmp_path: Path
) -> None:
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    result = run_cli(workspace, tmp_path, *_rollout_args(_wheel(tmp_path), name, "--reset-jobs", "bronze"))
    assert result.returncode == 1
    assert "--pause" in result.stderr
    assert not workspace.bodies("POST /api/2.2/jobs/update")
    assert not workspace.bodies("POST /api/2.2/jobs/runs/cancel-all")


def test_an_unknown_job_and_a_wrong_token_are_clear_errors(workspace: FakeWorkspace, tmp_path: Path) -> None:
    missing = run_cli(workspace, tmp_path, *_rollout_args(_wheel(tmp_path), "no-such-job"))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == "error: rollout: no Databricks job named no-such-job"
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    wrong = secrets.token_urlsafe(24)
    workspace.files.clear()
    refused = run_cli(workspace, tmp_path, *_rollout_args(_wheel(tmp_path), name), token=wrong)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("error: rollout:")
    assert wrong not in refused.stderr + refused.stdout
    assert WHEEL_URI not in workspace.files, "nothing was stored with a refused token"


def test_an_upload_outside_a_volume_is_refused(workspace: FakeWorkspace, tmp_path: Path) -> None:
    record = tmp_path / "deploy-record.json"
    record.write_text("{}")
    result = run_cli(
        workspace, tmp_path, "write-record", str(record), "--record", "/Workspace/pulse/record.json"
    )
    assert result.returncode == 1
    assert "not in a Unity Catalog volume" in result.stderr
    assert not workspace.calls


def _running(run_id: int) -> dict[str, Any]:
    return {"run_id": run_id, "state": {"life_cycle_state": "RUNNING"}}


def _rollout(
    ws: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, stop_timeout: float = 30.0
) -> None:
    """``rollout`` in this process (no poll interval), against the fake workspace."""
    with serve(ws) as databricks_env:
        for key, value in databricks_env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
        name = ws.jobs[PIPELINE_ID]["settings"]["name"]
        dbx.rollout(
            dbx.WorkspaceClient(), _wheel(tmp_path), WHEEL_URI, name, COMMIT, [], None,
            stop_timeout_seconds=stop_timeout, poll_seconds=0.01,
        )  # fmt: skip


def test_a_restart_starts_the_new_run_only_after_the_cancelled_one_stopped(
    workspace: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 24: a new run that starts while the cancelled one still writes is a second writer of the lake.
    workspace.active_runs[PIPELINE_ID] = [[_running(55)]]
    workspace.terminating_polls = 3
    _rollout(workspace, tmp_path, monkeypatch)
    assert workspace.timeline == [
        "cancel 55", "55 TERMINATING", "55 TERMINATING", "55 TERMINATING", "55 TERMINATED", "start",
    ]  # fmt: skip
    assert workspace.pause_history[PIPELINE_ID] == ["UNPAUSED", "PAUSED", "UNPAUSED"]


def test_a_cancelled_run_that_does_not_stop_fails_the_deploy_naming_it(
    workspace: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.active_runs[PIPELINE_ID] = [[_running(55)]]
    workspace.terminating_polls = 10**6
    with pytest.raises(dbx.DeployError, match=r"cancelled run 55 of job 7 is still TERMINATING after 0\.2 s"):
        _rollout(workspace, tmp_path, monkeypatch, stop_timeout=0.2)
    assert "start" not in workspace.timeline
    assert workspace.pause_history[PIPELINE_ID][-1] == "PAUSED", "nothing restarts beside the old run"


def test_the_stop_timeout_is_an_option_of_the_rollout(workspace: FakeWorkspace, tmp_path: Path) -> None:
    workspace.active_runs[PIPELINE_ID] = [[_running(55)]]
    workspace.terminating_polls = 10**6
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    result = run_cli(
        workspace, tmp_path, *_rollout_args(_wheel(tmp_path), name, "--stop-timeout-seconds", "0")
    )
    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: rollout: cancelled run 55 of job 7 is still TERMINATING after 0 s")


def test_the_reset_runs_as_the_jobs_service_principal(workspace: FakeWorkspace, tmp_path: Path) -> None:
    # Issue 23 defect 7: only the jobs' principal may write the layers (WRITE_FILES), checkpoints included.
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    args = _rollout_args(_wheel(tmp_path), name, "--reset-jobs", "pipeline", "--pause", "UNPAUSED")
    result = run_cli(workspace, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    (submitted,) = workspace.bodies("POST /api/2.2/jobs/runs/submit")
    principal = workspace.jobs[PIPELINE_ID]["run_as_user_name"]
    assert principal.startswith("${databricks_service_principal.")
    assert submitted["run_as"] == {"service_principal_name": principal}


def test_a_reset_of_a_job_that_runs_as_a_person_is_refused(workspace: FakeWorkspace, tmp_path: Path) -> None:
    workspace.jobs[PIPELINE_ID]["run_as_user_name"] = "someone@example.com"
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    args = _rollout_args(_wheel(tmp_path), name, "--reset-jobs", "pipeline", "--pause", "UNPAUSED")
    result = run_cli(workspace, tmp_path, *args)
    assert result.returncode == 1
    assert "does not run as a service principal" in result.stderr
    assert not workspace.bodies("POST /api/2.2/jobs/runs/submit")


@pytest.mark.parametrize("volume_exists", [True, False])
def test_the_wheel_is_staged_before_the_apply_once_its_volume_exists(
    workspace: FakeWorkspace, tmp_path: Path, volume_exists: bool
) -> None:
    # Issue 23 defect 9: the apply repoints the jobs at the wheel, so it must be there first.
    if volume_exists:
        workspace.volumes.add("pulse_prod.deploy.artifacts")
    wheel = _wheel(tmp_path)
    result = run_cli(workspace, tmp_path, "stage-wheel", "--wheel", str(wheel), "--wheel-uri", WHEEL_URI)
    assert result.returncode == 0, result.stderr
    assert (WHEEL_URI in workspace.files) is volume_exists
    if not volume_exists:
        assert "rollout uploads the wheel after the apply" in result.stderr


@pytest.mark.parametrize(
    ("scopes", "problem"),
    [
        ([], "does not exist"),
        ([{"name": "pulse-kv-prod", "backend_type": "DATABRICKS"}], "is DATABRICKS-backed"),
    ],
)
def test_a_missing_secret_scope_stops_the_plan_with_the_bootstrap_command(
    workspace: FakeWorkspace, tmp_path: Path, scopes: list[dict[str, str]], problem: str
) -> None:
    # Issue 23 defect 12: only a user can create the Key Vault-backed scope; say so before anything changes.
    workspace.scopes = scopes
    result = run_cli(workspace, tmp_path, "check-scope", "--scope", "pulse-kv-prod")
    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: check-scope: secret scope pulse-kv-prod {problem}")
    assert "databricks secrets create-scope --json" in error
    assert '"scope": "pulse-kv-prod", "scope_backend_type": "AZURE_KEYVAULT"' in error
    workspace.scopes = [{"name": "pulse-kv-prod", "backend_type": "AZURE_KEYVAULT"}]
    assert run_cli(workspace, tmp_path, "check-scope", "--scope", "pulse-kv-prod").returncode == 0


# ---------------------------------------------------------------------------------------------- record


def test_the_record_round_trips_and_says_whether_the_job_exists(
    workspace: FakeWorkspace, tmp_path: Path
) -> None:
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    out = tmp_path / "recorded.json"
    first = run_cli(workspace, tmp_path, "read-record", str(out), "--record", RECORD, "--job", name)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "true\n"  # stdout is the answer only; the action captures it
    assert out.read_text() == ""
    assert "no deploy record yet" in first.stderr
    record = tmp_path / "deploy-record.json"
    record.write_text('{"state_versions": {"pipeline": 1}, "commit": "abc123"}\n')
    assert run_cli(workspace, tmp_path, "write-record", str(record), "--record", RECORD).returncode == 0
    assert workspace.files[RECORD] == record.read_bytes()
    again = run_cli(workspace, tmp_path, "read-record", str(out), "--record", RECORD, "--job", "pulse-other")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "false\n"
    assert out.read_bytes() == record.read_bytes()


# ----------------------------------------------------------------------------------------------- smoke


def _run(life: str, tasks: list[tuple[str, str | None]]) -> dict[str, Any]:
    return {
        "run_id": 55,
        "run_page_url": "https://workspace/run/55",
        "state": {"life_cycle_state": life},
        "tasks": [
            {"task_key": f"t{i}", "state": {"life_cycle_state": s, **({"result_state": r} if r else {})}}
            for i, (s, r) in enumerate(tasks)
        ],
    }


def _smoke(ws: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timeout: float = 30.0) -> str:
    with serve(ws) as databricks_env:
        for key, value in databricks_env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
        names = [ws.jobs[i]["settings"]["name"] for i in (PIPELINE_ID, MAINTENANCE_ID)]
        return dbx.smoke(dbx.WorkspaceClient(), WHEEL_URI, *names, timeout_seconds=timeout, poll_seconds=0)


def test_smoke_waits_for_three_running_polls_in_a_row(
    workspace: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = _run("RUNNING", [("RUNNING", None)])
    workspace.active_runs[PIPELINE_ID] = [
        [], [_run("PENDING", [("PENDING", None)])], [running], [running],
        [_run("RUNNING", [("PENDING", None)])], [running], [running], [running],
    ]  # fmt: skip
    assert _smoke(workspace, tmp_path, monkeypatch) == "streaming job healthy: https://workspace/run/55"
    polls = workspace.routes().count("GET /api/2.2/jobs/runs/list")
    assert polls == 8, "the stable count restarts when a poll is not healthy"


def test_smoke_fails_on_a_failed_streaming_task(
    workspace: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.active_runs[PIPELINE_ID] = [[_run("RUNNING", [("RUNNING", None), ("TERMINATED", "FAILED")])]]
    with pytest.raises(dbx.DeployError, match="a streaming task failed: https://workspace/run/55"):
        _smoke(workspace, tmp_path, monkeypatch)


def test_smoke_fails_when_a_task_is_on_another_wheel(
    workspace: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = workspace.jobs[MAINTENANCE_ID]["settings"]["tasks"][0]
    task["libraries"] = [{"whl": WHEEL_URI.replace(COMMIT, "0ld")}]
    with pytest.raises(dbx.DeployError, match=f"not on {WHEEL_URI}: {task['task_key']}"):
        _smoke(workspace, tmp_path, monkeypatch)


def test_smoke_of_a_paused_or_scheduled_job_checks_the_configuration_only(
    synthesized_jobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = FakeWorkspace()  # dev's pipeline job is scheduled and paused (infra pipeline_mode)
    dev.add_job(PIPELINE_ID, _job(synthesized_jobs, "pulse-dev", "streaming-job"))
    dev.add_job(MAINTENANCE_ID, _job(synthesized_jobs, "pulse-dev", "maintenance-job"))
    assert "paused in this environment" in _smoke(dev, tmp_path, monkeypatch)
    assert "GET /api/2.2/jobs/runs/list" not in dev.routes()


def test_smoke_times_out_when_the_job_never_runs(
    workspace: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.active_runs[PIPELINE_ID] = [[]]
    with pytest.raises(dbx.DeployError, match=r"did not become healthy within 0\.3 s"):
        _smoke(workspace, tmp_path, monkeypatch, timeout=0.3)


# ------------------------------------------------------------------------------ the keyed engine's jar

JAR_URI = WHEEL_URI.rsplit("/", 1)[0] + "/pulse_engine-0.1.0.jar"


def _keyed(ws: FakeWorkspace) -> None:
    """The streaming job as terraform makes it where the environment runs the keyed engine."""
    for task in ws.jobs[PIPELINE_ID]["settings"]["tasks"]:
        task["libraries"] = [{"whl": WHEEL_URI}, {"jar": JAR_URI}]


def _jar(tmp_path: Path) -> Path:
    jar = tmp_path / "pulse_engine-0.1.0.jar"
    jar.write_bytes(os.urandom(1024))
    return jar


def test_the_engines_jar_is_staged_and_rolled_out_beside_the_wheel(
    workspace: FakeWorkspace, tmp_path: Path
) -> None:
    workspace.volumes.add("pulse_prod.deploy.artifacts")
    _keyed(workspace)
    jar_args = ("--engine-jar", str(_jar(tmp_path)), "--engine-jar-uri", JAR_URI)
    wheel = _wheel(tmp_path)
    staged = run_cli(
        workspace, tmp_path, "stage-wheel", "--wheel", str(wheel), "--wheel-uri", WHEEL_URI, *jar_args
    )
    assert staged.returncode == 0, staged.stderr
    assert {WHEEL_URI, JAR_URI} <= set(workspace.files)
    workspace.files.clear()
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    rolled = run_cli(workspace, tmp_path, *_rollout_args(wheel, name, *jar_args))
    assert rolled.returncode == 0, rolled.stderr
    routes = workspace.routes()
    assert _index(routes, f"PUT /api/2.0/fs/files{JAR_URI}") < _index(routes, "POST /api/2.2/jobs/update")
    half = run_cli(workspace, tmp_path, *_rollout_args(wheel, name, "--engine-jar", str(_jar(tmp_path))))
    assert half.returncode == 1
    assert "--engine-jar and --engine-jar-uri go together" in half.stderr


def test_a_reset_run_installs_the_jobs_jars_too(workspace: FakeWorkspace, tmp_path: Path) -> None:
    _keyed(workspace)
    workspace.run_script = [("TERMINATED", "SUCCESS")]
    name = workspace.jobs[PIPELINE_ID]["settings"]["name"]
    args = _rollout_args(_wheel(tmp_path), name, "--reset-jobs", "pipeline", "--pause", "UNPAUSED")
    result = run_cli(workspace, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    (submitted,) = workspace.bodies("POST /api/2.2/jobs/runs/submit")
    assert submitted["tasks"][0]["libraries"] == [{"whl": WHEEL_URI}, {"jar": JAR_URI}]


def test_smoke_fails_when_a_streaming_task_lacks_the_engines_new_jar(
    workspace: FakeWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace.active_runs[PIPELINE_ID] = [[_run("RUNNING", [("RUNNING", None)])]] * 3
    _keyed(workspace)
    with serve(workspace) as databricks_env:
        for key, value in databricks_env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
        names = [workspace.jobs[i]["settings"]["name"] for i in (PIPELINE_ID, MAINTENANCE_ID)]
        client = dbx.WorkspaceClient()
        healthy = dbx.smoke(
            client, WHEEL_URI, *names, timeout_seconds=30, poll_seconds=0, engine_jar_uri=JAR_URI
        )
        assert healthy.startswith("streaming job healthy")
        task = workspace.jobs[PIPELINE_ID]["settings"]["tasks"][0]
        task["libraries"] = [{"whl": WHEEL_URI}, {"jar": JAR_URI.replace(COMMIT, "0ld")}]
        with pytest.raises(dbx.DeployError, match=f"not on {WHEEL_URI} and {JAR_URI}: {task['task_key']}"):
            dbx.smoke(client, WHEEL_URI, *names, timeout_seconds=30, poll_seconds=0, engine_jar_uri=JAR_URI)
