"""Shared helpers of the delivery tests: paths, YAML loading and the workflow policy checks.

The policy checks are plain functions returning a list of violations, so the tests run them on the real
workflows (expecting none) and on broken copies (expecting some): every rule is shown to be able to fail.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
ACTIONS_DIR = REPO_ROOT / ".github" / "actions"
DEPLOY = WORKFLOWS_DIR / "deploy.yml"
CI = WORKFLOWS_DIR / "ci.yml"
DEPLOY_ACTION = ACTIONS_DIR / "deploy-env" / "action.yml"
PLAN_ACTION = ACTIONS_DIR / "plan-env" / "action.yml"
WORKFLOW_FILES = sorted(WORKFLOWS_DIR.glob("*.yml"))
ACTION_FILES = sorted(ACTIONS_DIR.glob("*/action.yml"))
VENV_BIN = Path(sys.executable).parent

ENVIRONMENTS = ("dev", "staging", "prod")
MAIN_ONLY = ("staging", "prod")
MAIN_REF_CONDITION = "github.ref == 'refs/heads/main'"
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+)*\b")
# Permissions each job needs beyond the top-level `contents: read`, and why.
DECLARED_JOB_PERMISSIONS: dict[tuple[str, str], dict[str, str]] = {
    ("deploy.yml", "build"): {"contents": "read", "packages": "write"},  # push the image to ghcr.io
    **{
        ("deploy.yml", f"{stage}-{env}"): {"contents": "read", "id-token": "write"}  # OIDC to Azure
        for env in ENVIRONMENTS
        for stage in ("plan", "deploy")
    },
}
OIDC_ACTION = "azure/login"
BUILD_COMMANDS = re.compile(
    r"python3? -m build|pip wheel|docker (buildx )?build|\bmake (setup|synth|test)\b|setup\.py bdist"
)
BUILD_ACTIONS = ("docker/build-push-action",)


def load_yaml(path: Path) -> dict[str, Any]:
    """YAML 1.2 (so the `on:` key stays a string), as plain dicts and lists."""
    return YAML(typ="safe").load(path.read_text())


def run_module(
    module: str, *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> ARGS`` from the repository root, as the Makefile and the actions run it."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def tool(name: str, env_var: str | None = None, *extra: Path) -> str | None:
    """Finds a tool: ``$<env_var>``, then the venv of this interpreter, then the given paths, then PATH."""
    candidates = [os.environ.get(env_var) if env_var else None, str(VENV_BIN / name), *map(str, extra)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which(name)


# ---------------------------------------------------------------------------------------------- policy


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def _uses_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, uses value, rest of the line) of every `uses:` in a YAML text."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"^\s*(?:-\s*)?uses:\s*(?P<value>\S+)(?P<rest>.*)$", line)
        if match:
            found.append((number, match["value"].strip("'\""), match["rest"]))
    return found


def pinning_violations(text: str, where: str) -> list[str]:
    """Every third-party `uses:` must be `owner/repo@<40-hex SHA> # vX.Y.Z`; local `./` actions are fine."""
    problems = []
    for number, value, rest in _uses_lines(text):
        if value.startswith("./"):
            continue
        if value.startswith("docker://"):
            problems.append(f"{where}:{number}: {value} is a container image, pin an action instead")
            continue
        if not PINNED.match(value):
            problems.append(f"{where}:{number}: {value} is not pinned to a full 40-hex commit SHA")
        elif not VERSION_COMMENT.search(rest):
            problems.append(f"{where}:{number}: {value} lacks its version comment (# vX.Y.Z)")
    return problems


def local_action_uses(step: dict[str, Any]) -> list[str]:
    """The actions a step runs, following a local composite action one level down."""
    uses = step.get("uses")
    if not uses:
        return []
    if uses.startswith("./"):
        action = load_yaml(REPO_ROOT / uses / "action.yml")
        return [uses] + [s.get("uses", "") for s in action.get("runs", {}).get("steps", []) if s.get("uses")]
    return [uses]


def job_actions(job: dict[str, Any]) -> list[str]:
    """Every action a job runs, composite actions expanded."""
    return [use for step in _steps(job) for use in local_action_uses(step)]


def job_run_scripts(job: dict[str, Any]) -> list[str]:
    """Every `run:` script of a job, composite actions expanded."""
    scripts = []
    for step in _steps(job):
        if step.get("run"):
            scripts.append(step["run"])
        uses = step.get("uses", "")
        if uses.startswith("./"):
            action = load_yaml(REPO_ROOT / uses / "action.yml")
            scripts += [s["run"] for s in action.get("runs", {}).get("steps", []) if s.get("run")]
    return scripts


def permission_violations(doc: dict[str, Any], file: str) -> list[str]:
    """Top level exactly `contents: read`; a job raises only what DECLARED_JOB_PERMISSIONS allows."""
    problems = []
    top = doc.get("permissions")
    if top != {"contents": "read"}:
        problems.append(f"{file}: top-level permissions must be exactly {{contents: read}}, got {top!r}")
    for name, job in (doc.get("jobs") or {}).items():
        if "permissions" not in job:
            continue
        granted = job["permissions"]
        if not isinstance(granted, dict):
            problems.append(f"{file}: job {name}: permissions {granted!r} (read-all/write-all) are too broad")
            continue
        allowed = DECLARED_JOB_PERMISSIONS.get((file, name), {"contents": "read"})
        for scope, level in granted.items():
            if level == "none":
                continue
            if scope not in allowed or (level == "write" and allowed[scope] != "write"):
                problems.append(f"{file}: job {name}: {scope}: {level} is not declared as needed")
        if granted.get("id-token") == "write":
            if "environment" not in job:
                problems.append(f"{file}: job {name}: id-token: write outside a deploy environment")
            if not any(use.split("@")[0] == OIDC_ACTION for use in job_actions(job)):
                problems.append(f"{file}: job {name}: id-token: write but no {OIDC_ACTION} step uses it")
    return problems


def timeout_violations(doc: dict[str, Any], file: str, limit: int = 120) -> list[str]:
    """Every job has `timeout-minutes` (an int, at most `limit`); a job calling a local reusable workflow
    (which may not set one) is covered when every job of the called workflow has one."""
    problems = []
    for name, job in (doc.get("jobs") or {}).items():
        called = job.get("uses")
        if isinstance(called, str) and called.startswith("./"):
            inner = timeout_violations(load_yaml(REPO_ROOT / called), called, limit)
            problems += [f"{file}: job {name} calls {called}: {p}" for p in inner]
            continue
        value = job.get("timeout-minutes")
        if not isinstance(value, int) or not 0 < value <= limit:
            problems.append(f"{file}: job {name}: timeout-minutes must be 1..{limit}, got {value!r}")
    return problems


def environment_name(job: dict[str, Any]) -> str | None:
    """The GitHub environment a job deploys to, if any."""
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def deploy_jobs(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Environment name -> (job id, job) for every job that targets a GitHub environment."""
    found = {}
    for name, job in (doc.get("jobs") or {}).items():
        env = environment_name(job)
        if env:
            found[env] = (name, job)
    return found


def needs_of(job: dict[str, Any]) -> list[str]:
    """The job ids a job directly needs."""
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def all_needs(doc: dict[str, Any], name: str) -> set[str]:
    """Every job a job waits for, directly or through the jobs it needs."""
    jobs = doc.get("jobs") or {}
    seen: set[str] = set()
    pending = needs_of(jobs.get(name, {}))
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending += needs_of(jobs.get(current, {}))
    return seen


def gate_violations(doc: dict[str, Any]) -> list[str]:
    """dev -> staging -> prod are environments, in that order, each with its own non-cancelling
    concurrency group; staging and prod run only from main; pushes deploy only from main."""
    problems = []
    jobs = deploy_jobs(doc)
    for env in ENVIRONMENTS:
        if env not in jobs:
            problems.append(f"no job deploys to the {env!r} environment (its approval/secrets gate)")
    groups = []
    for env, (name, job) in jobs.items():
        concurrency = job.get("concurrency")
        group = concurrency.get("group") if isinstance(concurrency, dict) else concurrency
        if not group or env not in str(group):
            problems.append(f"job {name}: needs a concurrency group naming {env!r}, got {group!r}")
        elif isinstance(concurrency, dict) and concurrency.get("cancel-in-progress"):
            problems.append(f"job {name}: a deploy must not be cancelled half-way (cancel-in-progress)")
        groups.append(group)
    if len(set(groups)) != len(groups):
        problems.append(f"environments share a concurrency group: {groups}")
    for previous, env in itertools.pairwise(ENVIRONMENTS):
        if env in jobs and previous in jobs and jobs[previous][0] not in all_needs(doc, jobs[env][0]):
            problems.append(f"{env} must need the {previous} deploy (promotion order)")
    for env_name, (name, job) in jobs.items():
        if env_name.removesuffix("-plan") in MAIN_ONLY and MAIN_REF_CONDITION not in str(job.get("if", "")):
            problems.append(
                f"{env_name} can run from a non-main ref: job {name} needs if: {MAIN_REF_CONDITION}"
            )
    push = (doc.get("on") or {}).get("push") if isinstance(doc.get("on"), dict) else None
    if isinstance(push, dict) and (push.get("branches") != ["main"] or push.get("tags")):
        problems.append(f"push deploys must come from main only, got {push!r}")
    return problems


def build_once_violations(doc: dict[str, Any]) -> list[str]:
    """Deploy jobs download the build job's artifacts and never build anything themselves."""
    problems = []
    jobs = doc.get("jobs") or {}
    build = jobs.get("build")
    if build is None:
        return ["no build job"]
    uploaded = {
        step.get("with", {}).get("name")
        for step in _steps(build)
        if step.get("uses", "").startswith("actions/upload-artifact@")
    }
    for env, (name, job) in deploy_jobs(doc).items():
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else needs
        if "build" not in needs:
            problems.append(f"{env}: job {name} must need the build job")
        downloaded = {
            step.get("with", {}).get("name")
            for step in _steps(job)
            if step.get("uses", "").startswith("actions/download-artifact@")
        }
        if not downloaded or not downloaded <= uploaded:
            problems.append(f"{env}: job {name} must download the build job's artifacts {sorted(uploaded)}")
        for use in job_actions(job):
            if use.split("@")[0] in BUILD_ACTIONS:
                problems.append(f"{env}: job {name} builds ({use}) instead of promoting")
        for script in job_run_scripts(job):
            match = BUILD_COMMANDS.search(script)
            if match:
                problems.append(f"{env}: job {name} builds ({match[0]!r}) instead of promoting")
        if "needs.build.outputs.image" not in str(job):
            problems.append(f"{env}: job {name} must deploy the image the build job pushed")
    return problems


def _secret_env_names(step: dict[str, Any], secret_inputs: set[str]) -> set[str]:
    names = set()
    for key, value in (step.get("env") or {}).items():
        text = str(value)
        if "secrets." in text or any(f"inputs.{name}" in text for name in secret_inputs):
            names.add(key)
    return names


def secret_echo_violations(steps: list[dict[str, Any]], where: str, secret_inputs: set[str]) -> list[str]:
    """Secrets reach scripts only through `env:`, and no script echoes them or turns on xtrace."""
    problems = []
    for index, step in enumerate(steps):
        script = step.get("run")
        if not script:
            continue
        label = f"{where}: step {step.get('name', index)!r}"
        if "secrets." in script or any(f"inputs.{name}" in script for name in secret_inputs):
            problems.append(f"{label}: a secret is expanded into the script; pass it through env:")
        if re.search(r"set -[a-wyz]*x|set -o xtrace|bash -x", script):
            problems.append(f"{label}: xtrace would print secrets")
        for name in _secret_env_names(step, secret_inputs):
            for line in script.splitlines():
                if "::add-mask::" in line:
                    continue
                if re.search(r"\b(echo|printf|cat)\b", line) and re.search(rf"\$\{{?{name}\b", line):
                    problems.append(f"{label}: prints the secret ${name}")
    return problems


# ------------------------------------------------------------------ CI gate, reviewed plan, image digest

CI_WORKFLOW = "./.github/workflows/ci.yml"
AUTO_APPROVE = re.compile(r"-?-auto-approve\b|\bcdktf deploy\b")
TERRAFORM = r"\bterraform\s+(?:-chdir=\S+\s+)?"
TERRAFORM_PLAN = re.compile(TERRAFORM + r"plan\b")
TERRAFORM_PLAN_OUT = re.compile(TERRAFORM + r"plan\b[^\n]*-out[= ](?P<file>\S+)")
TERRAFORM_APPLY_FILE = re.compile(TERRAFORM + r"apply\b(?P<args>[^\n]*)")
DIGEST_CHECK = re.compile(r"@sha256:\[0-9a-f\]\{64\}")


def action_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """A job's steps with local composite actions expanded in place (one level)."""
    steps = []
    for step in _steps(job):
        uses = step.get("uses", "")
        if uses.startswith("./"):
            steps += load_yaml(REPO_ROOT / uses / "action.yml").get("runs", {}).get("steps", [])
        else:
            steps.append(step)
    return steps


def ci_gate_violations(doc: dict[str, Any], ci: dict[str, Any]) -> list[str]:
    """Nothing is built or deployed before CI passed: the deploy workflow calls ci.yml as a reusable
    workflow and every environment job waits for it (through the build)."""
    problems = []
    triggers = ci.get("on") or {}
    if not isinstance(triggers, dict) or "workflow_call" not in triggers:
        problems.append("ci.yml cannot be called by the deploy workflow (no `on: workflow_call`)")
    jobs = doc.get("jobs") or {}
    callers = [name for name, job in jobs.items() if job.get("uses") == CI_WORKFLOW]
    if not callers:
        return [*problems, f"deploy.yml never runs CI (no job `uses: {CI_WORKFLOW}`)"]
    if "build" in jobs and not set(callers) & all_needs(doc, "build"):
        problems.append("the build job does not wait for CI (needs: the job that calls ci.yml)")
    for env, (name, _) in deploy_jobs(doc).items():
        if not set(callers) & all_needs(doc, name):
            problems.append(f"{env}: job {name} can run before CI passed")
    for name in callers:
        if jobs[name].get("if"):
            problems.append(f"job {name}: CI must run unconditionally, got if: {jobs[name]['if']!r}")
    return problems


def reviewed_plan_violations(doc: dict[str, Any]) -> list[str]:
    """Per environment, a plan job outside the protected environment saves and shows the plan, and the
    apply job inside it applies exactly that saved file; nothing auto-approves."""
    problems = []
    jobs = doc.get("jobs") or {}
    for name, job in jobs.items():
        for step in action_steps(job):
            if AUTO_APPROVE.search(step.get("run", "")):
                problems.append(f"job {name}: step {step.get('name')!r} applies without a reviewed plan")
    targets = deploy_jobs(doc)
    for env in ENVIRONMENTS:
        if env not in targets:
            continue
        apply_name, apply_job = targets[env]
        plan_jobs = [
            n
            for n in needs_of(apply_job)
            if any(TERRAFORM_PLAN_OUT.search(s.get("run", "")) for s in action_steps(jobs.get(n, {})))
        ]
        if len(plan_jobs) != 1:
            problems.append(
                f"{env}: job {apply_name} must need exactly one job that saves a plan, got {plan_jobs}"
            )
            continue
        plan_name = plan_jobs[0]
        plan_job = jobs[plan_name]
        if environment_name(plan_job) == env:
            problems.append(f"{env}: the plan job {plan_name} sits behind the approval gate it must inform")
        plan_scripts = [s.get("run", "") for s in action_steps(plan_job)]
        plan_file = next(m["file"] for s in plan_scripts if (m := TERRAFORM_PLAN_OUT.search(s)))
        if not any("terraform" in s and " show " in s and plan_file in s for s in plan_scripts) or not any(
            "GITHUB_STEP_SUMMARY" in s for s in plan_scripts
        ):
            problems.append(f"{env}: job {plan_name} does not render its saved plan into the run summary")
        if not any(s.get("uses", "").startswith("actions/upload-artifact@") for s in action_steps(plan_job)):
            problems.append(f"{env}: job {plan_name} does not upload the saved plan")
        apply_scripts = [s.get("run", "") for s in action_steps(apply_job)]
        applies = [m["args"] for s in apply_scripts for m in TERRAFORM_APPLY_FILE.finditer(s)]
        if not applies or not all(a.strip().split()[-1] == plan_file and "-var" not in a for a in applies):
            problems.append(
                f"{env}: job {apply_name} must `terraform apply {plan_file}` (the saved plan), got {applies}"
            )
        if any(TERRAFORM_PLAN.search(s) for s in apply_scripts):
            problems.append(f"{env}: job {apply_name} makes a plan of its own")
        passed = json_text(apply_job)
        if f"needs.{plan_name}.outputs.plan-sha256" not in passed or not any(
            "sha256sum" in s for s in apply_scripts
        ):
            problems.append(f"{env}: job {apply_name} does not check the saved plan's hash from {plan_name}")
    return problems


def json_text(value: Any) -> str:
    """A YAML subtree as text, to look for expressions."""
    return json.dumps(value)


def digest_violations(doc: dict[str, Any]) -> list[str]:
    """The image is promoted by digest: the build's image output is `<repo>@<digest of the push>`, every
    environment job gets that output, and the actions refuse an image that is not pinned by digest."""
    problems = []
    jobs = doc.get("jobs") or {}
    build = jobs.get("build", {})
    pushes = [s.get("id") for s in _steps(build) if s.get("uses", "").startswith(BUILD_ACTIONS)]
    image = str((build.get("outputs") or {}).get("image", ""))
    if not pushes or not any(
        re.search(rf"@\$\{{\{{\s*steps\.{p}\.outputs\.digest\s*\}}\}}$", image) for p in pushes
    ):
        problems.append(
            f"build: output image must be <repository>@${{{{ steps.<push>.outputs.digest }}}}, got {image!r}"
        )
    for env, (name, job) in deploy_jobs(doc).items():
        for step in _steps(job):
            if step.get("uses", "").startswith("./") and "image" in (step.get("with") or {}):
                if step["with"]["image"] != "${{ needs.build.outputs.image }}":
                    problems.append(
                        f"{env}: job {name} promotes {step['with']['image']!r}, not the built digest"
                    )
                if not any(DIGEST_CHECK.search(s.get("run", "")) for s in action_steps(job)):
                    problems.append(f"{env}: job {name} does not refuse an image without @sha256:<digest>")
    return problems
