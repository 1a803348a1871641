"""The Databricks side of a deploy, with the Databricks SDK: wheel upload, job restart or checkpoint reset,
smoke test and deploy record.

The SDK reads the standard ``DATABRICKS_*`` and ``ARM_*`` variables. The deploy actions set
``DATABRICKS_HOST``, ``DATABRICKS_AUTH_TYPE=github-oidc-azure`` and ``ARM_CLIENT_ID``/``ARM_TENANT_ID``: each
command exchanges a fresh GitHub OIDC token for an Entra ID token (no secret, never printed), so a call
after a long apply never uses the azure/login assertion, which expires within minutes. Progress goes to
stderr, results to stdout, and a failure ends the command with one ``error:`` line and exit code 1.

Usage::

    python -m delivery.databricks read-record FILE --record /Volumes/... --job NAME   # prints true/false
    python -m delivery.databricks stage-wheel --wheel FILE --wheel-uri /Volumes/...   # before the apply
    python -m delivery.databricks check-scope --scope NAME     # before the plan: the bootstrap scope exists
    python -m delivery.databricks rollout --wheel FILE --wheel-uri /Volumes/... --job NAME --commit SHA \
        [--reset-jobs "pipeline bronze" --pause UNPAUSED] [--stop-timeout-seconds 600]
    python -m delivery.databricks smoke --wheel-uri /Volumes/... --job NAME --maintenance-job NAME \
        [--timeout-seconds 900]
    python -m delivery.databricks write-record FILE --record /Volumes/...
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, OperationFailed
from databricks.sdk.service.compute import Library
from databricks.sdk.service.jobs import (
    Job,
    JobRunAs,
    JobSettings,
    PauseStatus,
    PythonWheelTask,
    Run,
    RunLifeCycleState,
    RunResultState,
    SubmitTask,
)

from delivery.hold import PAUSABLE_BLOCKS
from delivery.report import report_failure

VOLUMES = "/Volumes/"
RESET_COMMAND = "reset-checkpoints"
RESET_TIMEOUT = timedelta(minutes=30)
# How long a cancelled run may take to stop (its streams end their micro-batch, the cluster shuts down).
STOP_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 10.0
STOPPED_STATES = (RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED, RunLifeCycleState.INTERNAL_ERROR)
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


def stop_runs(
    w: WorkspaceClient,
    job_id: int,
    timeout_seconds: float = STOP_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Cancels the job's active runs and waits until each has stopped (TERMINATED, SKIPPED, INTERNAL_ERROR).

    A cancelled run still writes until its streams end; a new run started before that would be a second
    writer of the same lake (docs/delivery.md, "One writer").

    Raises:
        DeployError: If a run has not stopped within ``timeout_seconds``: its id and last state.
    """
    runs = [r.run_id for r in w.jobs.list_runs(job_id=job_id, active_only=True) if r.run_id is not None]
    w.jobs.cancel_all_runs(job_id=job_id)
    deadline = time.monotonic() + timeout_seconds
    for run_id in runs:
        while True:
            state = w.jobs.get_run(run_id=run_id).state
            life = state.life_cycle_state if state else None
            if life in STOPPED_STATES:
                say(f"cancelled run {run_id} of job {job_id} stopped ({life.value if life else ''})")
                break
            if time.monotonic() >= deadline:
                shown = life.value if life else "UNKNOWN"
                raise DeployError(
                    f"cancelled run {run_id} of job {job_id} is still {shown} after {timeout_seconds:g} s; "
                    "the job stays paused: stop the run in the workspace, then re-run the deploy"
                )
            say(f"cancelled run {run_id}: {life.value if life else 'UNKNOWN'}, waiting for it to stop")
            time.sleep(poll_seconds)


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


def volume_name(path: str) -> str:
    """``catalog.schema.volume`` of a ``/Volumes/<catalog>/<schema>/<volume>/...`` path."""
    parts = path.removeprefix(VOLUMES).split("/")
    if not path.startswith(VOLUMES) or len(parts) < 4:
        raise DeployError(f"{path} is not a file in a Unity Catalog volume ({VOLUMES}<c>/<s>/<v>/...)")
    return ".".join(parts[:3])


@dataclass(frozen=True)
class EngineJar:
    """The keyed engine's operator jar (``python -m delivery.engine_jar``) and where the tasks install it,
    beside the wheel."""

    local: Path
    uri: str


def stage_wheel(w: WorkspaceClient, local: Path, target: str, engine_jar: EngineJar | None = None) -> bool:
    """Uploads the wheel (and the keyed engine's jar) before the apply repoints the jobs at them, if
    their volume exists yet.

    Returns:
        Whether they were uploaded; before the first apply there is no volume, and ``rollout`` uploads them.
    """
    try:
        w.volumes.read(volume_name(target))
    except NotFound:
        say(f"no volume {volume_name(target)} yet (first apply): rollout uploads the wheel after the apply")
        return False
    upload(w, local, target)
    if engine_jar is not None:
        upload(w, engine_jar.local, engine_jar.uri)
    return True


def check_scope(w: WorkspaceClient, scope: str) -> str:
    """Checks that the Key Vault-backed secret scope the jobs read exists (a bootstrap object).

    Raises:
        DeployError: If it is missing or not Key Vault-backed, with the command that creates it.
    """
    found = {s.name: s for s in w.secrets.list_scopes()}
    backend = found[scope].backend_type if scope in found else None
    if backend is not None and backend.value == "AZURE_KEYVAULT":
        return f"secret scope {scope} exists (Key Vault-backed)"
    problem = (
        "does not exist" if scope not in found else f"is {backend.value if backend else 'unknown'}-backed"
    )
    raise DeployError(
        f"secret scope {scope} {problem}: a user creates it once, before the first full apply "
        f"(docs/infra.md, 'Bootstrap'): databricks secrets create-scope --json "
        f'\'{{"scope": "{scope}", "scope_backend_type": "AZURE_KEYVAULT", '
        '"backend_azure_keyvault": {"resource_id": "<vault id>", "dns_name": "<vault uri>"}}\''
    )


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

    The cluster (inside the workspace's network, with ``PULSE_LAKE``), the package/entry point and the
    jars its tasks install (the keyed engine's) come from the job as terraform made it, so the reset
    reaches the same storage with the same settings and classes.

    Raises:
        DeployError: If the job has no job cluster or no python_wheel_task to copy.
    """
    settings = job.settings or JobSettings()
    clusters = settings.job_clusters or []
    wheel_tasks = [t.python_wheel_task for t in settings.tasks or [] if t.python_wheel_task is not None]
    if not clusters or clusters[0].new_cluster is None or not wheel_tasks:
        raise DeployError(f"job {settings.name} has no job cluster or wheel task to run the reset on")
    jars = [lib.jar for t in settings.tasks or [] for lib in t.libraries or [] if lib.jar]
    return SubmitTask(
        task_key="reset",
        new_cluster=clusters[0].new_cluster,
        libraries=[Library(whl=wheel_uri), *(Library(jar=jar) for jar in dict.fromkeys(jars))],
        python_wheel_task=PythonWheelTask(
            package_name=wheel_tasks[0].package_name,
            entry_point=wheel_tasks[0].entry_point,
            parameters=reset_parameters(commit, reset_jobs),
        ),
    )


def job_run_as(job: Job) -> JobRunAs:
    """The service principal the job runs as: only it may write the layers (WRITE_FILES), so the reset,
    which moves checkpoints, runs as it too.

    Raises:
        DeployError: If the job runs as a person (or as no one).
    """
    principal = job.run_as_user_name or ""
    if not principal or "@" in principal:
        name = (job.settings or JobSettings()).name
        raise DeployError(f"job {name} does not run as a service principal ({principal or 'no run_as'})")
    return JobRunAs(service_principal_name=principal)


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
        run_name=f"pulse state reset {commit}",
        tasks=[reset_task(job, wheel_uri, commit, reset_jobs)],
        run_as=job_run_as(job),
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
    stop_timeout_seconds: float = STOP_TIMEOUT_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    engine_jar: EngineJar | None = None,
) -> None:
    """Uploads the wheel (and the keyed engine's jar), then restarts the streaming job onto it, resetting
    checkpoints first if asked.

    Either way the job is paused, its runs cancelled, and nothing starts again until every cancelled run
    has stopped (``stop_runs``, at most ``stop_timeout_seconds``): two runs never write the lake at once.

    With ``reset_jobs``, the applied plan holds the job PAUSED (delivery.hold) so the new wheel never runs on
    the old checkpoints: the job is paused, its runs cancelled, the reset run must succeed, and only then
    does the job resume with ``configured_pause`` (never the live, held, status). A failed reset stops the
    deploy with the job still paused.
    """
    upload(w, wheel, wheel_uri)
    if engine_jar is not None:
        upload(w, engine_jar.local, engine_jar.uri)
    job = find_job(w, pipeline_job)
    job_id = job.job_id or 0
    if reset_jobs:
        if configured_pause is None:
            raise DeployError("a reset needs the configured pause status (--pause, from delivery.hold)")
        set_pause(w, job_id, PauseStatus.PAUSED)
        stop_runs(w, job_id, stop_timeout_seconds, poll_seconds)
        reset_checkpoints(w, job, wheel_uri, commit, reset_jobs)
        set_pause(w, job_id, configured_pause)
        say(
            f"checkpoints of {' '.join(reset_jobs)} reset; the job resumes as configured "
            f"({configured_pause.value})"
        )
        return
    live = pause_status(job.settings or JobSettings())
    # A continuous job starts a new run as soon as its run is cancelled, while the old one may still be
    # writing; paused, it starts none until it is resumed, once the old run has stopped. The new run has the
    # new settings, and every stream resumes from its checkpoint on the new wheel.
    set_pause(w, job_id, PauseStatus.PAUSED)
    stop_runs(w, job_id, stop_timeout_seconds, poll_seconds)
    set_pause(w, job_id, live)
    say(f"streaming job {pipeline_job} ({live.value}) restarted from its checkpoints onto {wheel_uri}")


# ----------------------------------------------------------------------------------------------- smoke


def stale_tasks(job: Job, wheel_uri: str, jar_uri: str | None = None) -> list[str]:
    """Tasks of the job that do not install ``wheel_uri`` (or ``jar_uri``, when given)."""
    tasks = (job.settings or JobSettings()).tasks or []
    return [
        t.task_key
        for t in tasks
        if wheel_uri not in [lib.whl for lib in t.libraries or []]
        or (jar_uri is not None and jar_uri not in [lib.jar for lib in t.libraries or []])
    ]


def smoke(
    w: WorkspaceClient,
    wheel_uri: str,
    pipeline_job: str,
    maintenance_job: str,
    timeout_seconds: float,
    poll_seconds: float = SMOKE_POLL_SECONDS,
    engine_jar_uri: str | None = None,
) -> str:
    """Checks both jobs install the new wheel, the streaming job's tasks the keyed engine's new jar where
    the environment runs it, and the streaming job runs healthy (unless paused or scheduled).

    Returns:
        What was found, in one line.

    Raises:
        DeployError: If a task is on another wheel, a streaming task failed, or the job did not become
            healthy within ``timeout_seconds``.
    """
    pipeline = find_job(w, pipeline_job)
    for job, jar in ((pipeline, engine_jar_uri), (find_job(w, maintenance_job), None)):
        if stale := stale_tasks(job, wheel_uri, jar):
            on = f"{wheel_uri} and {jar}" if jar else wheel_uri
            raise DeployError(
                f"tasks of {(job.settings or JobSettings()).name} not on {on}: {' '.join(stale)}"
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
    _engine_jar_arguments(out)
    out.add_argument(
        "--stop-timeout-seconds",
        type=float,
        default=STOP_TIMEOUT_SECONDS,
        help="How long a cancelled run may take to stop before the deploy fails.",
    )
    stage = commands.add_parser(
        "stage-wheel", help="Upload the wheel before the apply, if its volume exists."
    )
    stage.add_argument("--wheel", type=Path, required=True, help="The wheel file to upload.")
    stage.add_argument("--wheel-uri", required=True, help="Its /Volumes/... path, which the jobs install.")
    _engine_jar_arguments(stage)
    scope = commands.add_parser("check-scope", help="Fail unless the bootstrap secret scope exists.")
    scope.add_argument("--scope", required=True, help="The Key Vault-backed scope's name.")
    check = commands.add_parser("smoke", help="The jobs use the new wheel; the streaming job is healthy.")
    check.add_argument("--wheel-uri", required=True)
    check.add_argument("--job", required=True, help="The streaming job's name.")
    check.add_argument("--maintenance-job", required=True)
    check.add_argument("--timeout-seconds", type=float, default=900.0)
    check.add_argument("--engine-jar-uri", help="The keyed engine's jar the streaming job's tasks install.")
    write = commands.add_parser("write-record", help="Store FILE as the environment's deploy record.")
    write.add_argument("file", type=Path)
    write.add_argument("--record", required=True, help="The record's /Volumes/... path.")
    return parser


def _engine_jar_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--engine-jar", type=Path, help="The keyed engine's jar, where it runs (engine=keyed)."
    )
    command.add_argument("--engine-jar-uri", help="Its /Volumes/... path, beside the wheel.")


def _engine_jar(args: argparse.Namespace) -> EngineJar | None:
    if (args.engine_jar is None) != (args.engine_jar_uri is None):
        raise ValueError("--engine-jar and --engine-jar-uri go together")
    return EngineJar(args.engine_jar, args.engine_jar_uri) if args.engine_jar is not None else None


def main(argv: list[str] | None = None) -> int:
    """Runs one sub-command; exit code 0, 1 on a failed deploy step, 2 on bad usage."""
    args = _parser().parse_args(argv)
    try:
        w = WorkspaceClient()
        if args.command == "read-record":
            print("true" if read_record(w, args.record, args.job, args.file) else "false")
        elif args.command == "rollout":
            pause = PauseStatus(args.pause) if args.pause else None
            rollout(
                w,
                args.wheel,
                args.wheel_uri,
                args.job,
                args.commit,
                args.reset_jobs.split(),
                pause,
                stop_timeout_seconds=args.stop_timeout_seconds,
                engine_jar=_engine_jar(args),
            )
        elif args.command == "stage-wheel":
            stage_wheel(w, args.wheel, args.wheel_uri, _engine_jar(args))
        elif args.command == "check-scope":
            say(check_scope(w, args.scope))
        elif args.command == "smoke":
            say(smoke(w, args.wheel_uri, args.job, args.maintenance_job, args.timeout_seconds,
                      engine_jar_uri=args.engine_jar_uri))  # fmt: skip
        else:
            upload(w, args.file, args.record)
    except (DeployError, DatabricksError, ValueError, OSError) as exc:
        return report_failure(args.command, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
