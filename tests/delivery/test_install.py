"""The wheel installed the way a Databricks job cluster installs it, and the jobs' commands run from it.

A job cluster installs the task's `whl` library with pip: the built wheel, **no extras**, on top of the
Databricks Runtime. The runtime brings pyspark, delta-spark, pyarrow, pandas and numpy (and their own
dependencies); nothing else. So:

* every entry point and command a synthesized job references must run `--help` from that install;
* every third-party module the jobs' code imports at run time must be installed by the wheel's base
  dependencies, be supplied by the runtime, or be declared as a library of the job;
* the pipeline job reaches its Kafka preflight and stops with a one-line error, not an import error.

The runtime is stood in for by the same distributions of this test venv, linked into a folder the clean
venv sees through a `.pth` file: no 456 MB pyspark install per run.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.delivery.conftest import BuiltWheel

# What the Databricks Runtime of the jobs (17.3 LTS, Spark 4) ships in its Python environment and Pulse
# uses; the wheel must not install these itself (a pip-installed pyspark would shadow the runtime's).
# databricks-sdk gives the jobs `dbutils` (the service credential of `pulse.lake_access`).
RUNTIME_PROVIDED = ("pyspark", "delta-spark", "pyarrow", "pandas", "numpy", "databricks-sdk")
# Third-party imports that the jobs' code holds but never reaches on a job cluster, and why.
NOT_REACHED_ON_A_JOB_CLUSTER = {
    "cryptography": "pulse.devstack.tls makes the embedded broker's CA (`pulse broker up`); jobs start none",
}


@dataclass(frozen=True)
class JobClusterInstall:
    """A clean venv holding the wheel (no extras) plus a stand-in for the runtime's libraries."""

    root: Path
    python: Path
    runtime: Path

    def run(self, code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
        return subprocess.run(
            [str(self.python), "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**_clean_env(self.root), **(env or {})},
            cwd=self.root,
        )


def _clean_env(root: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "JAVA_HOME")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    return {**env, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb", "PULSE_HOME": str(root / "pulse-home")}


def _runtime_closure(names: tuple[str, ...]) -> list[importlib.metadata.Distribution]:
    """The runtime's distributions and everything they require, as installed in this test venv."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = importlib.metadata.distribution(name)
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(seen.values())


def _link_runtime(target: Path) -> None:
    target.mkdir()
    for dist in _runtime_closure(RUNTIME_PROVIDED):
        base = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = base / top
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)


@pytest.fixture(scope="session")
def job_cluster(built_wheel: BuiltWheel, tmp_path_factory: pytest.TempPathFactory) -> JobClusterInstall:
    """`pip install <wheel>` into a new venv, with pip's cache, as the cluster's library install does."""
    root = tmp_path_factory.mktemp("job-cluster")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--disable-pip-version-check", str(built_wheel.path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, f"pip install of the wheel failed:\n{installed.stderr[-3000:]}"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    runtime = root / "databricks-runtime"
    _link_runtime(runtime)
    (Path(site) / "databricks_runtime.pth").write_text(f"{runtime}\n")
    return JobClusterInstall(root, python, runtime)


def _wheel_tasks(jobs: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{job}/{task['task_key']}", task["python_wheel_task"])
        for job, body in jobs.items()
        for task in body.get("task", [])
        if "python_wheel_task" in task
    ]


# Calls the entry point the way a python_wheel_task does: looked up by name among the installed
# distribution's entry points, with the task's parameters as arguments.
CALL_ENTRY_POINT = """
import importlib.metadata, sys
package, name, *args = sys.argv[1:]
points = [p for p in importlib.metadata.distribution(package).entry_points if p.name == name]
assert points, f"{package} has no entry point {name!r}"
sys.argv = [name, *args]
sys.exit(points[0].load()())
"""


def test_the_install_has_the_wheel_and_not_the_runtime(job_cluster: JobClusterInstall) -> None:
    listed = job_cluster.run(
        "import importlib.metadata as m, json, sys\n"
        "print(json.dumps({d.metadata['Name'].lower(): str(d.locate_file('')) for d in m.distributions()}))"
    )
    assert listed.returncode == 0, listed.stderr
    where = json.loads(listed.stdout)
    assert "pulse" in where
    installed_by_pip = {name for name, path in where.items() if not path.startswith(str(job_cluster.runtime))}
    # The wheel must not pull in what the runtime provides (a second pyspark would shadow the runtime's).
    assert installed_by_pip.isdisjoint(RUNTIME_PROVIDED), sorted(installed_by_pip & set(RUNTIME_PROVIDED))
    # ... nor anything of the dashboard or the local tools.
    assert installed_by_pip.isdisjoint({"streamlit", "azure-identity", "cdktf"})
    # The jobs commit with delta-rs (PULSE_GOLD_WRITER=delta-rs): the wheel brings it.
    assert "deltalake" in installed_by_pip


def test_every_job_entry_point_runs_help_from_the_clean_install(
    job_cluster: JobClusterInstall, synthesized_jobs: dict[str, dict[str, Any]]
) -> None:
    calls = sorted(
        {(task["package_name"], task["entry_point"], tuple(task.get("parameters", [])))
         for _, task in _wheel_tasks(synthesized_jobs)}
    )  # fmt: skip
    assert calls, "the synthesized jobs hold no python_wheel_task"
    problems = []
    for package, entry_point, parameters in calls:
        for args in ([], list(parameters)):
            shown = job_cluster.run(CALL_ENTRY_POINT, package, entry_point, *args, "--help")
            if shown.returncode != 0 or "Usage" not in shown.stdout:
                problems.append(
                    f"{entry_point} {' '.join(args)} --help exits {shown.returncode}: {shown.stderr[-800:]}"
                )
    assert problems == [], "\n".join(problems)


def _module_file(unpacked: Path, module: str) -> Path | None:
    base = unpacked.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _run_time_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes of a tree, without the `if TYPE_CHECKING:` blocks (never run)."""
    nodes, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        nodes.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def _imports(tree: ast.AST, package: str) -> set[str]:
    """Every module an AST imports at run time, also inside functions (lazy imports run on the job too)."""
    found: set[str] = set()
    for node in _run_time_nodes(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{node.module}" if node.module else parent
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def command_imports(cli: Path, command: str) -> set[str]:
    """The modules `pulse <command>` imports: the CLI module's own, plus those inside that command."""
    tree = ast.parse(cli.read_text())
    found = {name for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom) for name in
             _imports(node, "pulse")}  # fmt: skip
    handlers = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any(
            isinstance(d, ast.Call)
            and d.args
            and isinstance(d.args[0], ast.Constant)
            and d.args[0].value == command
            for d in node.decorator_list
        )
    ]
    assert len(handlers) == 1, f"no single handler for `pulse {command}` in {cli}"
    return found | _imports(handlers[0], "pulse")


def third_party_imports(unpacked: Path, roots: set[str]) -> dict[str, set[str]]:
    """Top-level third-party module -> the wheel modules importing it, over the import closure of `roots`."""
    own = {p.name for p in unpacked.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".data"))}
    pending, seen = list(roots), set()
    third: dict[str, set[str]] = {}
    while pending:
        name = pending.pop()
        top = name.split(".")[0]
        if top not in own:
            if top not in sys.stdlib_module_names and top != "__future__":
                third.setdefault(top, set())
            continue
        path = _module_file(unpacked, name)
        if path is None or path in seen:
            continue
        seen.add(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for imported in _imports(ast.parse(path.read_text()), package):
            imported_top = imported.split(".")[0]
            if imported_top not in own | set(sys.stdlib_module_names) | {"__future__"}:
                third.setdefault(imported_top, set()).add(name)
            pending.append(imported)
    return third


def test_everything_the_jobs_import_is_installed_or_provided(
    job_cluster: JobClusterInstall, built_wheel: BuiltWheel, synthesized_jobs: dict[str, dict[str, Any]]
) -> None:
    cli = built_wheel.unpacked / "pulse" / "cli.py"
    commands = {task["parameters"][0] for _, task in _wheel_tasks(synthesized_jobs) if task.get("parameters")}
    assert commands >= {"pipeline", "maintenance"}, commands
    declared = {
        lib["pypi"]["package"].split("=")[0].split("[")[0].lower()
        for body in synthesized_jobs.values()
        for task in body.get("task", [])
        for lib in task.get("library", [])
        if "pypi" in lib
    }
    needed: dict[str, set[str]] = {}
    for command in sorted(commands):
        for module, users in third_party_imports(built_wheel.unpacked, command_imports(cli, command)).items():
            needed.setdefault(module, set()).update(users)
    assert {"pyspark", "typer", "confluent_kafka"} <= set(needed), sorted(needed)
    probe = job_cluster.run(
        "import importlib.util, json, sys\n"
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))",
        *sorted(needed),
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    missing = {
        module: sorted(users)
        for module, users in needed.items()
        if not found[module] and module not in NOT_REACHED_ON_A_JOB_CLUSTER and module not in declared
    }
    assert missing == {}, (
        "the jobs import modules that neither the wheel's base dependencies nor the Databricks runtime nor "
        f"the job's libraries provide (module -> importers): {missing}"
    )


def test_the_import_check_sees_lazy_imports(built_wheel: BuiltWheel) -> None:
    # `pulse pipeline` imports the runner inside its handler, and the preflight imports confluent_kafka
    # inside check_kafka: the closure must follow both, or the check above proves nothing.
    needed = third_party_imports(
        built_wheel.unpacked, command_imports(built_wheel.unpacked / "pulse" / "cli.py", "pipeline")
    )
    assert "pulse.preflight" in needed["confluent_kafka"]
    assert "streamlit" not in needed  # the dashboard command's imports are not the pipeline's


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_pipeline_job_reaches_its_kafka_preflight_from_the_clean_install(
    job_cluster: JobClusterInstall,
) -> None:
    bootstrap = f"127.0.0.1:{_closed_port()}"
    ran = job_cluster.run(
        CALL_ENTRY_POINT,
        "pulse",
        "pulse",
        "pipeline",
        "all",
        "--once",
        env={
            "PULSE_LAKE": str(job_cluster.root / "lake"),
            "PULSE_KAFKA_BOOTSTRAP": bootstrap,
        },
        timeout=120,
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode != 0
    assert "Traceback" not in output, output[-3000:]
    assert "ModuleNotFoundError" not in output, output[-3000:]
    assert bootstrap in output, output[-3000:]
