"""The wheel builds, and the Databricks jobs in the synthesized stacks can run it.

Each job task is a ``python_wheel_task``: Databricks installs the wheel, looks up ``entry_point`` among the
entry points of the distribution ``package_name`` and calls it with ``parameters``. So the names must
match the wheel's metadata, and every parameter list must be a command the ``pulse`` CLI accepts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from typing import Any

import pytest

from delivery.databricks import reset_parameters
from pulse.jobs.state import STATE_VERSIONS
from tests.delivery.conftest import BuiltWheel
from tests.delivery.delivery_testkit import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _wheel_tasks(jobs: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    tasks = []
    for job, body in jobs.items():
        for task in body.get("task", []):
            assert "python_wheel_task" in task, f"{job}/{task.get('task_key')} is not a wheel task"
            tasks.append((f"{job}/{task['task_key']}", task["python_wheel_task"]))
    return tasks


def _run_entry_point(
    wheel: BuiltWheel, target: str, args: list[str], cwd
) -> subprocess.CompletedProcess[str]:
    """Runs the wheel's own entry point ``module:attr`` (not the editable install) with ``args``."""
    module, attr = target.split(":")
    code = (
        "import importlib, sys\n"
        f"module = importlib.import_module({module!r})\n"
        f"assert module.__file__.startswith({str(wheel.unpacked)!r}), module.__file__\n"
        "sys.argv[0] = 'pulse'\n"
        f"sys.exit(getattr(module, {attr!r})())\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(wheel.unpacked),
        "COLUMNS": "250",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PULSE_HOME": str(cwd / "pulse-home"),
    }
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60
    )


def _listed_commands(help_text: str) -> set[str]:
    """Sub-command names in a typer/click help screen (its Commands section)."""
    commands: set[str] = set()
    in_section = False
    for line in help_text.splitlines():
        stripped = line.strip(" │╭╮╰╯─|")
        if re.match(r"^(Commands|Commands:)\b", stripped) or "─ Commands ─" in line:
            in_section = True
            continue
        if in_section:
            if line.lstrip().startswith(("╰", "╭")) or not stripped:
                if line.lstrip().startswith("╭"):
                    in_section = False
                continue
            match = re.match(r"^([a-z][\w-]*)\s", stripped)
            if match:
                commands.add(match[1])
    return commands


def check_cli_command(wheel: BuiltWheel, target: str, parameters: list[str], cwd) -> list[str]:
    """Problems with running ``pulse <parameters>``: every sub-command exists and has ``--help``, and
    every positional value is one the command's help names."""
    problems = []
    path: list[str] = []
    for index, token in enumerate(parameters):
        shown = _run_entry_point(wheel, target, [*path, "--help"], cwd)
        if shown.returncode != 0:
            shown_command = " ".join([*path, "--help"])
            return [f"`pulse {shown_command}` exits {shown.returncode}: {shown.stderr.strip()[-300:]}"]
        if token in _listed_commands(shown.stdout):
            path.append(token)
            continue
        if token.startswith("-"):
            continue
        if (
            not _listed_commands(shown.stdout)
            and path
            and re.search(rf"\b{re.escape(token)}\b", shown.stdout)
        ):
            continue
        if not path or _listed_commands(shown.stdout):
            problems.append(f"`pulse {' '.join(parameters[: index + 1])}`: no such command")
        else:
            problems.append(f"`pulse {' '.join(path)}` does not accept {token!r} (its --help never names it)")
        break
    else:
        final = _run_entry_point(wheel, target, [*path, "--help"], cwd)
        if final.returncode != 0:
            problems.append(f"`pulse {' '.join(path)} --help` exits {final.returncode}")
    return problems


def test_wheel_metadata_matches_the_project(built_wheel: BuiltWheel) -> None:
    assert built_wheel.metadata["Name"] == PYPROJECT["name"] == "pulse"
    assert built_wheel.metadata["Version"] == PYPROJECT["version"]
    assert built_wheel.path.name == f"pulse-{PYPROJECT['version']}-py3-none-any.whl"


def test_wheel_contains_the_console_script_and_the_app_package(built_wheel: BuiltWheel) -> None:
    assert built_wheel.entry_points.get("console_scripts", {}).get("pulse") == "pulse.cli:main"
    for required in (
        "pulse/__init__.py",
        "pulse/cli.py",
        "pulse/jobs/state.py",
        "pulse/jobs/state_versions.toml",
        "pulse_core/catalogue.py",
    ):
        assert required in built_wheel.names, f"{required} missing from {built_wheel.path.name}"


def test_wheel_carries_the_keyed_engines_operator_source_that_compiles(
    built_wheel: BuiltWheel, tmp_path
) -> None:
    """The keyed engine compiles its JVM operator from the wheel's own Java source (`pulse.engine`): the
    source is in the wheel, and the unpacked wheel's copy builds a jar that holds the operator's class."""
    import zipfile

    from pulse import engine

    source = "pulse/engine/java/pulse/engine/ViewerChanges.java"
    assert source in built_wheel.names, f"{source} missing from {built_wheel.path.name}"
    shipped = built_wheel.unpacked / source
    assert shipped.read_bytes() == (REPO_ROOT / "app" / source).read_bytes()
    jar = engine.build_jar(tmp_path / "jvm", built_wheel.unpacked / "pulse" / "engine" / "java")
    assert "pulse/engine/ViewerChanges.class" in zipfile.ZipFile(jar).namelist()


def test_wheel_carries_the_license(built_wheel: BuiltWheel) -> None:
    """pyproject.toml declares Apache-2.0: the wheel carries the repository's LICENSE, and says so."""
    assert built_wheel.metadata["License-Expression"] == PYPROJECT["license"] == "Apache-2.0"
    assert built_wheel.metadata["License-File"] == "LICENSE"
    shipped = [name for name in built_wheel.names if name.endswith(".dist-info/licenses/LICENSE")]
    assert len(shipped) == 1, built_wheel.names
    text = (built_wheel.unpacked / shipped[0]).read_text()
    assert text == (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_wheel_ships_the_pipeline_and_the_core_only(built_wheel: BuiltWheel) -> None:
    """Two top-level packages, no dashboard, no test aids: what a shared job cluster gets is the pipeline."""
    top_level = {
        name.split("/")[0] for name in built_wheel.names if not name.split("/")[0].endswith(".dist-info")
    }
    assert top_level == {"pulse", "pulse_core"}, f"the wheel installs {sorted(top_level)} into site-packages"
    shipped = "\n".join(built_wheel.names)
    for aid in ("testkit", "gold_reference", "gold_fixture", "samples/", "pulse_dashboard", ".jsonl"):
        assert aid not in shipped, f"{aid} is in {built_wheel.path.name}"
    streamlit = [
        name
        for name in built_wheel.names
        if name.endswith(".py") and re.search(r"^\s*(import|from)\s+(streamlit|altair)\b",
                                               (built_wheel.unpacked / name).read_text(), re.MULTILINE)
    ]  # fmt: skip
    assert not streamlit, f"dashboard code in the pipeline wheel: {streamlit}"


def test_jobs_reference_the_wheel_package_and_entry_point(
    built_wheel: BuiltWheel, synthesized_jobs: dict[str, dict[str, Any]]
) -> None:
    entry_points = {name for group in built_wheel.entry_points.values() for name in group}
    problems = []
    for where, task in _wheel_tasks(synthesized_jobs):
        if task["package_name"] != built_wheel.metadata["Name"]:
            problems.append(f"{where}: package_name {task['package_name']!r} is not the wheel's name")
        if task["entry_point"] not in entry_points:
            problems.append(
                f"{where}: entry_point {task['entry_point']!r} is not among {sorted(entry_points)}"
            )
    assert problems == []


def test_every_job_command_exists_in_the_wheels_cli(
    built_wheel: BuiltWheel, synthesized_jobs: dict[str, dict[str, Any]], tmp_path
) -> None:
    commands = sorted({tuple(task.get("parameters", [])) for _, task in _wheel_tasks(synthesized_jobs)})
    assert commands, "no job parameters to check"
    target = built_wheel.entry_points["console_scripts"]["pulse"]
    problems = [
        p for params in commands for p in check_cli_command(built_wheel, target, list(params), tmp_path)
    ]
    assert problems == [], "the Databricks jobs run commands the wheel does not have:\n" + "\n".join(problems)


def test_the_reset_run_is_a_command_of_the_wheels_cli(built_wheel: BuiltWheel, tmp_path) -> None:
    """The deploy submits the state reset as a one-off python_wheel_task: its parameters must be a command
    of the same wheel, for every job that has a state version."""
    target = built_wheel.entry_points["console_scripts"]["pulse"]
    parameters = reset_parameters("0123456789abcdef0123456789abcdef01234567", sorted(STATE_VERSIONS))
    assert check_cli_command(built_wheel, target, parameters, tmp_path) == []
    wrong = check_cli_command(built_wheel, target, reset_parameters("abc", ["gold"]), tmp_path)
    assert wrong
    assert "does not accept 'gold'" in wrong[0]


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [(["no-such-command"], "no such command"), (["pipeline", "platinum"], "does not accept")],
)
def test_cli_check_rejects_unknown_commands(built_wheel: BuiltWheel, tmp_path, parameters, fragment) -> None:
    target = built_wheel.entry_points["console_scripts"]["pulse"]
    problems = check_cli_command(built_wheel, target, parameters, tmp_path)
    assert problems
    assert fragment in problems[0]
