"""The CLI checks every numeric option and every choice itself, before it contacts anything.

A bad value must fail with typer's usage error (exit 2) and name the option. The broker address points
nowhere reachable, so a command that got past its arguments would fail differently (and slowly).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pulse.cli import PipelineJob, app
from pulse.jobs.runner import PIPELINE_JOBS

BAD = [
    (["produce", "--events", "-5"], "--events"),
    (["produce", "--events", "0"], "--events"),
    (["produce", "--duration", "0"], "--duration"),
    (["produce", "--events", "10", "--rate", "-1"], "--rate"),
    (["produce", "--events", "10", "--videos", "0"], "--videos"),
    (["produce", "--events", "10", "--seed", "-3"], "--seed"),
    (["produce", "--events", "10", "--inject-bad", "1.5"], "--inject-bad"),
    (["produce", "--events", "10", "--duplicates", "-0.1"], "--duplicates"),
    (["produce", "--events", "10", "--hype-every", "-1"], "--hype-every"),
    (["produce", "--events", "10", "--late", "2"], "--late"),
    (["produce", "--events", "10", "--max-late", "-1"], "--max-late"),
    (["produce", "--events", "ten"], "--events"),
    (["pipeline", "nonsense"], "nonsense"),
    (["pipeline", "all", "--trigger-seconds", "-1"], "--trigger-seconds"),
    (["pipeline", "all", "--max-offsets-per-trigger", "0"], "--max-offsets-per-trigger"),
    (["pipeline", "silver", "--max-files-per-trigger", "0"], "--max-files-per-trigger"),
    (["pipeline", "all", "--wait-for-kafka", "-1"], "--wait-for-kafka"),
    (["demo", "--kafka-port", "0"], "--kafka-port"),
    (["demo", "--dashboard-port", "70000"], "--dashboard-port"),
    (["demo", "--rate", "0"], "--rate"),
    (["backfill", "--chunk-rows", "10"], "--chunk-rows"),
    (["maintenance", "--retention-hours", "1"], "--retention-hours"),
    (["dashboard", "--port", "0"], "--port"),
    (["local", "up", "--port", "65535"], "--port"),
    (["local", "up", "--partitions", "0"], "--partitions"),
]


@pytest.mark.parametrize(("args", "option"), BAD, ids=[" ".join(args) for args, _ in BAD])
def test_bad_values_stop_before_anything_runs(args: list[str], option: str, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PULSE_HOME", str(tmp_path))
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", "192.0.2.1:9")  # TEST-NET-1: never answers
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output
    assert option in result.output
    assert not list(tmp_path.iterdir()), "nothing may be created before the arguments are checked"


def test_pipeline_job_choices_are_the_runner_jobs() -> None:
    assert tuple(job.value for job in PipelineJob) == PIPELINE_JOBS
