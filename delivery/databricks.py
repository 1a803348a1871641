"""The Databricks side of a deploy, with the Databricks SDK: wheel upload, job restart or checkpoint reset,
smoke test and deploy record.

The SDK reads the standard ``DATABRICKS_*`` variables. The deploy action sets ``DATABRICKS_HOST`` and
``DATABRICKS_AUTH_TYPE=azure-cli``: the token is an Entra ID token of the azure/login session (OIDC, no
secret), which the SDK asks ``az`` for and never prints. Progress goes to stderr, results to stdout, and a
failure ends the command with one ``error:`` line and exit code 1.

Usage::

    python -m delivery.databricks read-record FILE --record /Volumes/... --job NAME   # prints true/false
    python -m delivery.databricks rollout --wheel FILE --wheel-uri /Volumes/... --job NAME --commit SHA \
        [--reset-jobs "pipeline bronze" --pause UNPAUSED]
    python -m delivery.databricks smoke --wheel-uri /Volumes/... --job NAME --maintenance-job NAME \
        [--timeout-seconds 900]
    python -m delivery.databricks write-record FILE --record /Volumes/...
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, OperationFailed
from databricks.sdk.service.compute import Library
from databricks.sdk.service.jobs import (
    Job,
    JobSettings,
    PauseStatus,
    PythonWheelTask,
    Run,
    RunLifeCycleState,
    RunResultState,
    SubmitTask,
)

from delivery.hold import PAUSABLE_BLOCKS

VOLUMES = "/Volumes/"
RESET_COMMAND = "reset-checkpoints"
RESET_TIMEOUT = timedelta(minutes=30)
IDLE_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 10.0
SMOKE_POLL_SECONDS = 30.0
# Healthy = every stream still running this many polls (~90 s) in a row, past its first micro-batches.
SMOKE_STABLE_POLLS = 3
FAILED_TASK_STATES = (RunResultState.FAILED, RunResultState.TIMEDOUT)


class DeployError(RuntimeError):
    """A deploy step failed; the message is the one line the log shows."""


def say(message: str) -> None:
    """Progress, on stderr: stdout carries only a command's result."""
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ jobs


def find_job(w: WorkspaceClient, name: str) -> Job:
    """The job named ``name``, with its full settings.

    Raises:
        DeployError: If the workspace has no such job.
    """
    found = next(iter(w.jobs.list(name=name)), None)
    if found is None or found.job_id is None:
        raise DeployError(f"no Databricks job named {name}")
    return w.jobs.get(job_id=found.job_id)


def pause_status(settings: JobSettings) -> PauseStatus:
    """The pipeline job's pause status: a continuous job's, or a scheduled job's (infra pipeline_mode)."""
    block = settings.continuous or settings.schedule
    return (block.pause_status if block else None) or PauseStatus.UNPAUSED


def set_pause(w: WorkspaceClient, job_id: int, status: PauseStatus) -> None:
    """Sets the pause status of the continuous/schedule/trigger blocks; the rest stays as terraform set it."""
    settings = w.jobs.get(job_id=job_id).settings or JobSettings()
    blocks = {
        name: replace(block, pause_status=status)
        for name in PAUSABLE_BLOCKS
        if (block := getattr(settings, name)) is not None
    }
    w.jobs.update(job_id=job_id, new_settings=JobSettings(**blocks))


def wait_until_idle(w: WorkspaceClient, job_id: int, timeout_seconds: float = IDLE_TIMEOUT_SECONDS) -> None:
    """Waits until the job has no active run (after cancelling them).

    Raises:
        DeployError: If runs are still active after ``timeout_seconds``.
    """
    deadline = time.monotonic() + timeout_seconds
    while next(iter(w.jobs.list_runs(job_id=job_id, active_only=True)), None) is not None:
        if time.monotonic() >= deadline:
            raise DeployError(f"runs of job {job_id} did not stop within {timeout_seconds:g} s")
        time.sleep(POLL_SECONDS)


# ----------------------------------------------------------------------------------------------- files


def upload(w: WorkspaceClient, local: Path, target: str) -> None:
    """Uploads ``local`` to a Unity Catalog volume path (Files API: creates the folders, overwrites).

    Raises:
        DeployError: If ``target`` is not a ``/Volumes/...`` path.
    """
    if not target.startswith(VOLUMES):
        raise DeployError(f"{target} is not in a Unity Catalog volume ({VOLUMES}...)")
    with local.open("rb") as contents:
        w.files.upload(target, contents, overwrite=True)
    say(f"uploaded {local.name} to {target}")


def read_record(w: WorkspaceClient, record: str, pipeline_job: str, out: Path) -> bool:
    """Writes the environment's deploy record to ``out`` (empty when there is none).

    Returns:
        Whether the streaming job exists: without a record, an existing job means a deploy outside the
        pipeline, not a first deploy.
    """
    try:
        content = w.files.download(record).contents
        out.write_bytes(content.read() if content else b"")
    except NotFound:
        out.write_bytes(b"")
        say(f"no deploy record yet at {record}")
    return next(iter(w.jobs.list(name=pipeline_job)), None) is not None


# --------------------------------------------------------------------------------------------- rollout


def reset_parameters(commit: str, reset_jobs: list[str]) -> list[str]:
    """The wheel's ``pulse`` command that moves the checkpoints aside (one token per option value)."""
    return [RESET_COMMAND, f"--commit={commit}", *reset_jobs]


def reset_task(job: Job, wheel_uri: str, commit: str, reset_jobs: list[str]) -> SubmitTask:
    """A one-off task on the streaming job's own cluster and wheel entry point that resets checkpoints.

    The cluster (inside the workspace's network, with ``PULSE_LAKE``) and the package/entry point come from
    the job as terraform made it, so the reset reaches the same storage with the same settings.

    Raises:
        DeployError: If the job has no job cluster or no python_wheel_task to copy.
    """
    settings = job.settings or JobSettings()
    clusters = settings.job_clusters or []
    wheel_tasks = [t.python_wheel_task for t in settings.tasks or [] if t.python_wheel_task is not None]
    if not clusters or clusters[0].new_cluster is None or not wheel_tasks:
        raise DeployError(f"job {settings.name} has no job cluster or wheel task to run the reset on")
    return SubmitTask(
        task_key="reset",
        new_cluster=clusters[0].new_cluster,
        libraries=[Library(whl=wheel_uri)],
        python_wheel_task=PythonWheelTask(
            package_name=wheel_tasks[0].package_name,
            entry_point=wheel_tasks[0].entry_point,
            parameters=reset_parameters(commit, reset_jobs),
        ),
    )


def _describe(run: Run) -> str:
    state = run.state
    life = state.life_cycle_state.value if state and state.life_cycle_state else "UNKNOWN"
    result = state.result_state.value if state and state.result_state else "NONE"
    message = f": {state.state_message}" if state and state.state_message else ""
    return f"{life}/{result}{message}"


def reset_checkpoints(
    w: WorkspaceClient, job: Job, wheel_uri: str, commit: str, reset_jobs: list[str]
) -> None:
    """Runs ``pulse reset-checkpoints`` once on a job cluster and waits until it ends.

    Raises:
        DeployError: If the run does not end in SUCCESS within ``RESET_TIMEOUT``.
    """
    waiter = w.jobs.submit(
        run_name=f"pulse state reset {commit}", tasks=[reset_task(job, wheel_uri, commit, reset_jobs)]
    )
    run_id = waiter.run_id
    say(f"reset run {run_id}: moving the checkpoints of {' '.join(reset_jobs)} aside")
    try:
        run = waiter.result(
            timeout=RESET_TIMEOUT, callback=lambda r: say(f"reset run {run_id}: {_describe(r)}")
        )
    except (OperationFailed, TimeoutError) as exc:
        raise DeployError(f"state reset run {run_id} did not succeed: {exc}") from None
    if run.state is None or run.state.result_state != RunResultState.SUCCESS:
        raise DeployError(
            f"state reset run {run_id} ended {_describe(run)} {run.run_page_url or ''}".rstrip()
        )


def rollout(
    w: WorkspaceClient,
    wheel: Path,
    wheel_uri: str,
    pipeline_job: str,
    commit: str,
    reset_jobs: list[str],
    configured_pause: PauseStatus | None,
) -> None:
    """Uploads the wheel, then restarts the streaming job onto it, resetting checkpoints first if asked.

    With ``reset_jobs``, the applied plan holds the job PAUSED (delivery.hold) so the new wheel never runs on
    the old checkpoints: the job is paused, its runs cancelled, the reset run must succeed, and only then
    does the job resume with ``configured_pause`` (never the live, held, status). A failed reset stops the
    deploy with the job still paused.
    """
    upload(w, wheel, wheel_uri)
    job = find_job(w, pipeline_job)
    job_id = job.job_id or 0
    if reset_jobs:
        if configured_pause is None:
            raise DeployError("a reset needs the configured pause status (--pause, from delivery.hold)")
        set_pause(w, job_id, PauseStatus.PAUSED)
        w.jobs.cancel_all_runs(job_id=job_id)
        wait_until_idle(w, job_id)
        reset_checkpoints(w, job, wheel_uri, commit, reset_jobs)
        set_pause(w, job_id, configured_pause)
        say(
            f"checkpoints of {' '.join(reset_jobs)} reset; the job resumes as configured "
            f"({configured_pause.value})"
        )
        return
    live = pause_status(job.settings or JobSettings())
    # A continuous job starts a new run, with the new settings, as soon as its run is cancelled: every
    # stream resumes from its checkpoint on the new wheel.
    w.jobs.cancel_all_runs(job_id=job_id)
    say(f"streaming job {pipeline_job} ({live.value}) restarted from its checkpoints onto {wheel_uri}")


# ----------------------------------------------------------------------------------------------- smoke


def stale_tasks(job: Job, wheel_uri: str) -> list[str]:
    """Tasks of the job that do not install ``wheel_uri``."""
    tasks = (job.settings or JobSettings()).tasks or []
    return [t.task_key for t in tasks if wheel_uri not in [lib.whl for lib in t.libraries or []]]


def smoke(
    w: WorkspaceClient,
    wheel_uri: str,
    pipeline_job: str,
    maintenance_job: str,
    timeout_seconds: float,
    poll_seconds: float = SMOKE_POLL_SECONDS,
) -> str:
    """Checks both jobs install the new wheel and the streaming job runs healthy (unless paused or scheduled).

    Returns:
        What was found, in one line.

    Raises:
        DeployError: If a task is on another wheel, a streaming task failed, or the job did not become
            healthy within ``timeout_seconds``.
    """
    pipeline = find_job(w, pipeline_job)
    for job in (pipeline, find_job(w, maintenance_job)):
        if stale := stale_tasks(job, wheel_uri):
            raise DeployError(
                f"tasks of {(job.settings or JobSettings()).name} not on {wheel_uri}: {' '.join(stale)}"
            )
    settings = pipeline.settings or JobSettings()
    if pause_status(settings) == PauseStatus.PAUSED:
        return "pipeline job is paused in this environment: its configuration was checked, no run expected"
    if settings.continuous is None:
        return "pipeline job runs on its schedule (pipeline_mode=scheduled): its configuration was checked"
    deadline, stable = time.monotonic() + timeout_seconds, 0
    while time.monotonic() < deadline:
        run = next(iter(w.jobs.list_runs(job_id=pipeline.job_id, active_only=True, expand_tasks=True)), None)
        tasks = (run.tasks or []) if run else []
        if any(t.state and t.state.result_state in FAILED_TASK_STATES for t in tasks):
            raise DeployError(f"a streaming task failed: {run.run_page_url if run else ''}")
        running = (
            run is not None
            and run.state is not None
            and run.state.life_cycle_state == RunLifeCycleState.RUNNING
            and bool(tasks)
            and all(t.state and t.state.life_cycle_state == RunLifeCycleState.RUNNING for t in tasks)
        )
        stable = stable + 1 if running else 0
        say(f"streaming job: {'running' if running else 'not running yet'} ({stable}/{SMOKE_STABLE_POLLS})")
        if stable >= SMOKE_STABLE_POLLS and run is not None:
            return f"streaming job healthy: {run.run_page_url}"
        time.sleep(poll_seconds)
    raise DeployError(f"the streaming job did not become healthy within {timeout_seconds:g} s")


# ------------------------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m delivery.databricks", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    read = commands.add_parser(
        "read-record", help="Save the deploy record to FILE; print whether the job exists."
    )
    read.add_argument("file", type=Path)
    read.add_argument("--record", required=True, help="The record's /Volumes/... path.")
    read.add_argument("--job", required=True, help="The streaming job's name.")
    out = commands.add_parser("rollout", help="Upload the wheel; restart (or reset and restart) the job.")
    out.add_argument("--wheel", type=Path, required=True, help="The wheel file to upload.")
    out.add_argument("--wheel-uri", required=True, help="Its /Volumes/... path, which the jobs install.")
    out.add_argument("--job", required=True, help="The streaming job's name.")
    out.add_argument("--commit", required=True, help="The deployed commit (names the reset folder).")
    out.add_argument("--reset-jobs", default="", help="Space-separated jobs whose checkpoints are reset.")
    out.add_argument(
        "--pause",
        choices=[s.value for s in PauseStatus],
        help="Configured pause status, resumed after a reset.",
    )
    check = commands.add_parser("smoke", help="The jobs use the new wheel; the streaming job is healthy.")
    check.add_argument("--wheel-uri", required=True)
    check.add_argument("--job", required=True, help="The streaming job's name.")
    check.add_argument("--maintenance-job", required=True)
    check.add_argument("--timeout-seconds", type=float, default=900.0)
    write = commands.add_parser("write-record", help="Store FILE as the environment's deploy record.")
    write.add_argument("file", type=Path)
    write.add_argument("--record", required=True, help="The record's /Volumes/... path.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one sub-command; exit code 0, 1 on a failed deploy step, 2 on bad usage."""
    args = _parser().parse_args(argv)
    try:
        w = WorkspaceClient()
        if args.command == "read-record":
            print("true" if read_record(w, args.record, args.job, args.file) else "false")
        elif args.command == "rollout":
            pause = PauseStatus(args.pause) if args.pause else None
            rollout(w, args.wheel, args.wheel_uri, args.job, args.commit, args.reset_jobs.split(), pause)
        elif args.command == "smoke":
            say(smoke(w, args.wheel_uri, args.job, args.maintenance_job, args.timeout_seconds))
        else:
            upload(w, args.file, args.record)
    except (DeployError, DatabricksError, ValueError, OSError) as exc:
        prefix = "::error::" if os.environ.get("GITHUB_ACTIONS") == "true" else "error: "
        print(f"{prefix}{args.command}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
