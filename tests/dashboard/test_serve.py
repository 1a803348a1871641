"""How the dashboard is started, locally (`pulse dashboard`) and in its container image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pulse_core.settings import PulseSettings
from pulse_dashboard.serve import APP_SCRIPT, dashboard_environment, streamlit_command

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "dashboard" / "Dockerfile"


def flags(command: list[str]) -> dict[str, str]:
    return dict(zip(command[5::2], command[6::2], strict=True))


def test_streamlit_command_is_headless_loopback_and_private() -> None:
    command = streamlit_command(8765)
    assert command[1:5] == ["-m", "streamlit", "run", str(APP_SCRIPT)]
    assert APP_SCRIPT.is_file()
    options = flags(command)
    assert options["--server.port"] == "8765"
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"
    assert flags(streamlit_command(8501, "0.0.0.0"))["--server.address"] == "0.0.0.0"


def test_child_environment_carries_the_resolved_settings(tmp_path: Path) -> None:
    settings = PulseSettings(home=tmp_path / "home", lake=str(tmp_path / "lake"))
    env = dashboard_environment(settings, {"PATH": "/bin", "PULSE_LAKE": "/elsewhere"})
    assert env["PULSE_LAKE"] == str(tmp_path / "lake")
    assert env["PULSE_HOME"] == str(tmp_path / "home")
    assert env["PULSE_ENV"] == "local"
    assert env["PATH"] == "/bin"


def test_dockerfile_is_slim_non_root_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines() if line.strip()]
    bases = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert bases
    assert all(base.endswith("-slim-bookworm") for base in bases)
    (user,) = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert user.split(":")[0] not in ("root", "0")
    last_from = max(i for i, line in enumerate(instructions) if line.startswith("FROM "))
    assert any(line.startswith("USER ") for line in instructions[last_from:])
    (health,) = [line for line in instructions if line.startswith("HEALTHCHECK")]
    assert "/_stcore/health" in health
    assert "8501" in health
    (cmd,) = [line for line in instructions if line.startswith("CMD [")]
    assert '"pulse_dashboard.serve"' in cmd
    assert '"0.0.0.0"' in cmd


def test_image_installs_only_the_dashboard_dependencies() -> None:
    text = DOCKERFILE.read_text()
    installs = re.findall(r"pip install[^\n]*", text)
    assert installs == ["pip install --no-compile ./core ./dashboard"]
    names = set()
    for folder in ("core", "dashboard"):
        project = tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"]
        assert not project.get("optional-dependencies"), f"{folder}: the image installs no extras"
        names |= {re.split(r"[=<>\[]", requirement)[0] for requirement in project["dependencies"]}
    assert {"streamlit", "deltalake", "azure-identity", "pydantic"} <= names
    assert not names & {"pyspark", "delta-spark", "confluent-kafka", "cdktf", "pytest", "typer"}
