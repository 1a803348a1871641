"""Safe rollout of stateful streams: ``python -m delivery.state_versions``."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest

from delivery import state_versions as states
from tests.delivery.delivery_testkit import REPO_ROOT, run_module

CURRENT = {"bronze": 1, "silver": 1, "gold": 1}


def test_reads_the_versions_the_pipeline_reads() -> None:
    from pulse.jobs.state import STATE_VERSIONS

    versions = states.load_current_versions()
    assert versions == {query.value: version for query, version in STATE_VERSIONS.items()}
    assert set(versions) == {"pipeline", "bronze", "refine"}
    assert all(isinstance(v, int) for v in versions.values())


@pytest.mark.parametrize(
    "text", ["pipeline = ", 'bronze = "2"', "bronze = true", "bronze = 1.5", "[bronze]\nversion = 2", ""]
)
def test_a_malformed_versions_file_is_an_error(tmp_path, text: str) -> None:
    versions = tmp_path / "state_versions.toml"
    versions.write_text(text + "\n")
    with pytest.raises(states.StateVersionError):
        states.load_current_versions(versions)


def test_the_versions_file_is_plain_data(tmp_path) -> None:
    versions = tmp_path / "state_versions.toml"
    versions.write_text("# a comment\nbronze = 2\n")
    assert states.load_current_versions(versions) == {"bronze": 2}


@pytest.mark.parametrize("text", [None, "", "  ", "null", "{}", '{"state_versions": {}}'])
def test_nothing_recorded_is_a_first_deploy(text) -> None:
    decision = states.decide(CURRENT, states.parse_recorded(text), reset=False)
    assert decision.action is states.Action.FIRST_DEPLOY
    assert decision.exit_code == 0


@pytest.mark.parametrize("reset", [False, True])
def test_unchanged_versions_restart_from_checkpoints(reset: bool) -> None:
    decision = states.decide(CURRENT, dict(CURRENT), reset=reset)
    assert decision.action is states.Action.RESTART
    assert decision.reset_jobs == ()
    assert decision.exit_code == 0
    assert ("ignored" in decision.message) is reset


def test_a_changed_version_without_reset_is_refused() -> None:
    decision = states.decide({**CURRENT, "gold": 2}, CURRENT, reset=False)
    assert decision.action is states.Action.BLOCKED
    assert decision.exit_code == states.EXIT_RESET_REQUIRED != 0
    assert "gold 1 -> 2" in decision.message
    assert "reset_state=true" in decision.message


def test_a_changed_version_with_reset_resets_only_the_changed_jobs() -> None:
    decision = states.decide({**CURRENT, "silver": 3, "gold": 2}, CURRENT, reset=True)
    assert decision.action is states.Action.RESET
    assert decision.reset_jobs == ("gold", "silver")
    assert decision.exit_code == 0


def test_a_lower_version_is_a_change_too() -> None:
    assert states.decide(CURRENT, {**CURRENT, "bronze": 2}, reset=False).action is states.Action.BLOCKED


def test_added_and_removed_jobs_need_no_reset() -> None:
    decision = states.decide({"bronze": 1, "platinum": 1}, {"bronze": 1, "silver": 1}, reset=False)
    assert decision.action is states.Action.RESTART
    assert "platinum" in decision.message
    assert "silver" in decision.message


@pytest.mark.parametrize("text", ["{not json", '["bronze"]', '{"bronze": "1"}', '{"bronze": true}'])
def test_a_malformed_record_is_an_error(text: str) -> None:
    with pytest.raises(states.StateVersionError):
        states.parse_recorded(text)


def test_the_record_round_trips() -> None:
    record = states.build_record(CURRENT, "a" * 40, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert record["commit"] == "a" * 40
    assert record["deployed_at"] == "2026-01-02T03:04:05+00:00"
    assert states.parse_recorded(json.dumps(record)) == CURRENT


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_module("delivery.state_versions", *args, stdin=stdin, timeout=30)


def test_cli_fails_with_a_clear_message_when_a_reset_is_needed(tmp_path) -> None:
    versions = tmp_path / "state_versions.toml"
    versions.write_text("bronze = 1\nsilver = 2\n")
    recorded = json.dumps({"state_versions": {"bronze": 1, "silver": 1}})
    refused = _cli("--state-file", str(versions), "--recorded", "-", "--reset", "false", stdin=recorded)
    assert refused.returncode == 3
    assert "silver 1 -> 2" in refused.stderr
    assert "reset_state=true" in refused.stderr
    outputs = tmp_path / "github-output"
    allowed = _cli(
        "--state-file",
        str(versions),
        "--recorded",
        "-",
        "--reset",
        "true",
        "--github-output",
        str(outputs),
        stdin=recorded,
    )
    assert allowed.returncode == 0, allowed.stderr
    assert outputs.read_text().splitlines() == ["action=reset", "reset_jobs=silver"]


def test_cli_treats_a_missing_record_file_as_first_deploy(tmp_path) -> None:
    result = _cli("--recorded", str(tmp_path / "absent.json"), "--reset", "false")
    assert result.returncode == 0
    assert "action: first-deploy" in result.stdout


def test_cli_rejects_a_bad_reset_flag() -> None:
    assert _cli("--reset", "maybe").returncode == 2


def test_cli_writes_a_record_that_it_reads_back(tmp_path) -> None:
    record = tmp_path / "deploy-record.json"
    assert _cli("--write-record", str(record), "--commit", "b" * 40).returncode == 0
    again = _cli("--recorded", str(record), "--reset", "false")
    assert again.returncode == 0
    assert "action: restart" in again.stdout


# Defect 10: a missing record is a first deploy only where the streaming job does not exist either.


def test_a_missing_record_next_to_an_existing_job_is_refused_with_how_to_write_it() -> None:
    where = "/Workspace/Shared/pulse/deploy/deploy-record.json"
    decision = states.decide(CURRENT, None, reset=False, job_exists=True, record_location=where)
    assert decision.action is states.Action.UNRECORDED
    assert decision.exit_code == states.EXIT_UNRECORDED != 0
    assert "--write-record deploy-record.json --commit" in decision.message
    assert (
        f"python -m delivery.databricks write-record deploy-record.json --record {where}" in decision.message
    )
    assert "reset_state=true" in decision.message


def test_a_missing_record_next_to_an_existing_job_with_reset_resets_every_job() -> None:
    decision = states.decide(CURRENT, None, reset=True, job_exists=True)
    assert decision.action is states.Action.RESET
    assert decision.reset_jobs == tuple(sorted(CURRENT))


def test_cli_refuses_a_missing_record_when_the_job_exists(tmp_path) -> None:
    outputs = tmp_path / "github-output"
    result = _cli(
        "--recorded",
        str(tmp_path / "absent.json"),
        "--job-exists",
        "true",
        "--reset",
        "false",
        "--github-output",
        str(outputs),
    )
    assert result.returncode == states.EXIT_UNRECORDED
    assert "--write-record" in result.stderr
    assert "action=unrecorded" in outputs.read_text()
    first = _cli("--recorded", str(tmp_path / "absent.json"), "--job-exists", "false", "--reset", "false")
    assert first.returncode == 0
    assert "action: first-deploy" in first.stdout


def test_the_deploy_tells_the_check_whether_the_job_exists() -> None:
    from tests.delivery.delivery_testkit import load_yaml

    action = load_yaml(REPO_ROOT / ".github" / "actions" / "plan-env" / "action.yml")
    state = next(s for s in action["runs"]["steps"] if s.get("id") == "state")
    assert "job_exists=$(python -m delivery.databricks read-record recorded.json" in state["run"]
    assert '--job "$PIPELINE_JOB"' in state["run"]
    assert '--job-exists "$job_exists"' in state["run"]
    assert state["env"]["PIPELINE_JOB"]
    assert state["env"]["DATABRICKS_AUTH_TYPE"] == "github-oidc-azure"  # a fresh GitHub OIDC token, no secret
