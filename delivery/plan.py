"""Print what the deploy pipeline would roll out to one environment, without any cloud access.

``make deploy-plan ENV=dev`` runs this. The deploy workflow runs the same module with ``--github-output``,
so the names it prints (stack, resource group, workspace, jobs, container app, artifact paths) are the
names the pipeline uses: one source of truth, derived from ``infra/config.py`` and ``pyproject.toml``.

Usage::

    python -m delivery.plan --env dev [--sha SHA] [--registry ghcr.io/org] [--recorded rec.json]
                                      [--reset] [--json] [--github-output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from delivery import state_versions as states
from delivery.engine_jar import engine_jar_file_name
from infra.config import ENVIRONMENTS
from infra.naming import ResourceKind

REPO_ROOT = Path(__file__).resolve().parent.parent

IMAGE_NAME = "pulse-dashboard"
HEALTH_PATH = "/_stcore/health"
TF_VARIABLES = {
    "confluent_cloud_api_key": "environment secret CONFLUENT_CLOUD_API_KEY",
    "confluent_cloud_api_secret": "environment secret CONFLUENT_CLOUD_API_SECRET",
    "dashboard_image": "built once (image tag = commit SHA)",
    "pulse_wheel_uri": "built once, uploaded per environment",
    "alert_emails": "environment secret ALERT_EMAILS",
    "operator_ip_ranges": "environment secret OPERATOR_IP_RANGES (default [])",
    "azure_databricks_sp_object_id": "environment secret AZURE_DATABRICKS_SP_OBJECT_ID",
    "deployer_application_id": "environment secret AZURE_CLIENT_ID (the deploy identity, which plans too)",
    "databricks_account_id": "environment secret DATABRICKS_ACCOUNT_ID",
}
# Only where the dashboard signs users in; the viewer group only where the config names one.
SIGN_IN_TF_VARIABLES = {
    "dashboard_auth_client_id": "environment secret DASHBOARD_AUTH_CLIENT_ID (bootstrap, docs/infra.md)",
    "dashboard_auth_client_secret": "environment secret DASHBOARD_AUTH_CLIENT_SECRET (bootstrap)",
}
VIEWER_GROUP_TF_VARIABLE = {"dashboard_viewer_group_id": "environment secret DASHBOARD_VIEWER_GROUP_ID"}
# Only where the pipeline runs the keyed engine (`databricks.engine` in infra/config.py).
ENGINE_JAR_TF_VARIABLE = {"pulse_engine_jar_uri": "built once with the wheel, uploaded beside it"}


@dataclass(frozen=True)
class DeployPlan:
    """Everything one environment's deploy job rolls out.

    Attributes mirror the keys written with ``--github-output``.
    """

    env: str
    stack: str
    resource_group: str
    databricks_workspace: str
    pipeline_job: str
    maintenance_job: str
    container_app: str
    dashboard_sign_in: bool
    dashboard_viewer_group: bool
    secret_scope: str
    version: str
    commit: str
    wheel_file: str
    wheel_uri: str
    engine: str
    engine_jar_file: str
    engine_jar_uri: str
    image: str
    deploy_record: str


def project_version(pyproject: Path = REPO_ROOT / "pyproject.toml") -> tuple[str, str]:
    """The distribution name and version from ``pyproject.toml``."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return project["name"], project["version"]


def wheel_file_name(name: str, version: str) -> str:
    """The pure-Python wheel's file name, normalised as the build backend writes it (PEP 427/503)."""
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-py3-none-any.whl"


def current_commit() -> str:
    """``$GITHUB_SHA`` in CI, else ``git rev-parse HEAD`` (with ``-dirty`` when the tree has changes)."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def default_registry() -> str:
    """``$IMAGE_REGISTRY``, else GitHub's container registry of the repository owner."""
    if os.environ.get("IMAGE_REGISTRY"):
        return os.environ["IMAGE_REGISTRY"].rstrip("/")
    owner = os.environ.get("GITHUB_REPOSITORY_OWNER", "<org>")
    return f"ghcr.io/{owner.lower()}"


def build_plan(env: str, commit: str, registry: str) -> DeployPlan:
    """Derives the deploy plan of one environment.

    Args:
        env: ``dev``, ``staging`` or ``prod``.
        commit: The commit SHA being promoted (also the image tag).
        registry: Registry and namespace the image is pushed to, e.g. ``ghcr.io/org``.

    Returns:
        The plan.
    """
    config = ENVIRONMENTS[env]
    namer = config.namer
    name, version = project_version()
    wheel = wheel_file_name(name, version)
    jar = engine_jar_file_name(version)
    return DeployPlan(
        env=env,
        stack=config.stack_name,
        resource_group=config.resource_group_name,
        databricks_workspace=namer.name(ResourceKind.DATABRICKS_WORKSPACE, "dbw"),
        pipeline_job=namer.name(ResourceKind.DISPLAY_NAME, "pipeline"),
        maintenance_job=namer.name(ResourceKind.DISPLAY_NAME, "maintenance"),
        container_app=namer.name(ResourceKind.CONTAINER_APP, "dashboard"),
        dashboard_sign_in=config.dashboard.sign_in,
        dashboard_viewer_group=config.dashboard.viewer_group,
        secret_scope=config.secret_scope_name,
        version=version,
        commit=commit,
        wheel_file=wheel,
        # Per-commit folders in the environment's artifacts volume, which only the deployer writes: a
        # cluster never reuses a cached library of the same file name from an older build.
        wheel_uri=f"{config.artifacts.wheels_dir}/{commit}/{wheel}",
        engine=config.databricks.engine,
        engine_jar_file=jar,
        # Beside the wheel, where the keyed engine's tasks install it; none elsewhere.
        engine_jar_uri=f"{config.artifacts.wheels_dir}/{commit}/{jar}"
        if config.databricks.engine == "keyed"
        else "",
        image=f"{registry}/{IMAGE_NAME}:{commit}",
        deploy_record=config.artifacts.deploy_record,
    )


def synthesized_jobs(stack: str, outdir: Path = REPO_ROOT / "cdktf.out") -> list[dict[str, object]] | None:
    """The Databricks jobs of a stack synthesized earlier by ``make synth``, or None when there is none."""
    path = outdir / "stacks" / stack / "cdk.tf.json"
    if not path.is_file():
        return None
    resources = json.loads(path.read_text()).get("resource", {}).get("databricks_job", {})
    jobs = []
    for body in resources.values():
        tasks = [
            {
                "task": task.get("task_key"),
                "package": task.get("python_wheel_task", {}).get("package_name"),
                "entry_point": task.get("python_wheel_task", {}).get("entry_point"),
                "parameters": task.get("python_wheel_task", {}).get("parameters", []),
            }
            for task in body.get("task", [])
        ]
        jobs.append({"name": body.get("name"), "tasks": tasks})
    return jobs


def render(plan: DeployPlan, decision: states.Decision, jobs: list[dict[str, object]] | None) -> str:
    """The human-readable plan."""
    lines = [
        f"Deploy plan for {plan.env} (dry run, no cloud access)",
        f"  stack:              {plan.stack}   ->  terraform plan -out=tfplan (reviewed), then apply tfplan",
        f"  resource group:     {plan.resource_group}",
        f"  commit:             {plan.commit}",
        "artifacts (built once, promoted unchanged dev -> staging -> prod)",
        f"  wheel:              {plan.wheel_file} (version {plan.version})",
        f"  wheel in workspace: {plan.wheel_uri}",
        f"  engine:             {plan.engine}"
        + (f" (its jar {plan.engine_jar_file} at {plan.engine_jar_uri})" if plan.engine_jar_uri else ""),
        f"  dashboard image:    {plan.image}",
        "Terraform variables (TF_VAR_*)",
    ]
    variables = dict(TF_VARIABLES)
    if plan.dashboard_sign_in:
        variables |= SIGN_IN_TF_VARIABLES
    if plan.dashboard_viewer_group:
        variables |= VIEWER_GROUP_TF_VARIABLE
    if plan.engine_jar_uri:
        variables |= ENGINE_JAR_TF_VARIABLE
    lines += [f"  {name:<30} {source}" for name, source in variables.items()]
    lines += [
        "Databricks",
        f"  workspace:          {plan.databricks_workspace}",
        f"  streaming job:      {plan.pipeline_job} (restarted onto the new wheel)",
        f"  maintenance job:    {plan.maintenance_job}",
    ]
    if jobs is None:
        lines.append("  job tasks:          (run `make synth` first to list them)")
    for job in jobs or []:
        for task in job["tasks"]:  # type: ignore[union-attr]
            params = " ".join(task["parameters"])
            lines.append(
                f"  {job['name']}/{task['task']}: {task['entry_point']} {params}  (package {task['package']})"
            )
    lines += [
        "Dashboard",
        f"  container app:      {plan.container_app} (rolled onto {plan.image})",
        f"  who may open it:    {dashboard_access(plan)}",
        f"  smoke test:         <dashboard_url>{HEALTH_PATH} answers 'ok'",
    ]
    if plan.dashboard_sign_in:
        lines.append(
            "  sign-in test:       <dashboard_url>/ redirects a request that did not sign in (or 401)"
        )
    lines += [
        "State versions",
        f"  recorded at:        {plan.deploy_record} (in the environment's workspace)",
        f"  check:              {decision.action}: {decision.message}",
    ]
    return "\n".join(lines)


def dashboard_access(plan: DeployPlan) -> str:
    """Who may open the hosted dashboard (docs/infra.md, "Who can open the dashboard")."""
    if not plan.dashboard_sign_in:
        return (
            "WARNING: anyone who has its URL, with no sign-in (dashboard.public in infra/config.py): "
            f"{plan.env}'s Gold, viewers' ids included, is open to the internet"
        )
    who = (
        "the viewer group's members (DASHBOARD_VIEWER_GROUP_ID)"
        if plan.dashboard_viewer_group
        else "any user"
    )
    return f"{who} of the organisation's Entra ID tenant, once signed in ({HEALTH_PATH} needs no sign-in)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, choices=sorted(ENVIRONMENTS), help="Target environment.")
    parser.add_argument("--sha", default=None, help="Commit being promoted (default: $GITHUB_SHA or HEAD).")
    parser.add_argument(
        "--registry", default=None, help="Image registry/namespace (default: $IMAGE_REGISTRY)."
    )
    parser.add_argument(
        "--recorded",
        default=None,
        help="JSON of the state versions recorded at the last deploy (offline: default none).",
    )
    parser.add_argument("--reset", action="store_true", help="Plan as if reset_state=true.")
    parser.add_argument("--json", action="store_true", help="Print the plan as JSON.")
    parser.add_argument("--github-output", type=Path, help="Append the plan as key=value lines here.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Prints the plan; exits 3 when the state-version check would stop the deploy."""
    args = _parser().parse_args(argv)
    plan = build_plan(
        args.env, args.sha or current_commit(), (args.registry or default_registry()).rstrip("/")
    )
    try:
        recorded_text = Path(args.recorded).read_text() if args.recorded else None
        decision = states.decide(
            states.load_current_versions(), states.parse_recorded(recorded_text), args.reset
        )
    except (states.StateVersionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return states.EXIT_USAGE
    if args.github_output is not None:
        with args.github_output.open("a") as out:
            for key, value in asdict(plan).items():
                # Booleans as the workflow's shell compares them: true / false.
                out.write(f"{key}={str(value).lower() if isinstance(value, bool) else value}\n")
    if args.json:
        print(json.dumps({**asdict(plan), "state_check": decision.action.value}, indent=2))
    else:
        print(render(plan, decision, synthesized_jobs(plan.stack)))
    return decision.exit_code


if __name__ == "__main__":
    sys.exit(main())
