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
    (["broker", "up", "--port", "65535"], "--port"),
    (["broker", "up", "--partitions", "0"], "--partitions"),
    (["local", "up", "--port", "65535"], "--port"),  # the broker commands' old name, kept for scripts
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


def test_the_trigger_interval_has_one_default() -> None:
    """`--trigger-seconds` and the runner's options read their default from `io.Trigger`."""
    import inspect

    from pulse.cli import pipeline_command
    from pulse.io import Trigger
    from pulse.jobs.runner import PipelineOptions

    cli_default = inspect.signature(pipeline_command).parameters["trigger_seconds"].default
    assert cli_default == PipelineOptions().trigger_seconds == Trigger().interval_s
    assert PipelineOptions().trigger == Trigger()
    assert PipelineOptions(once=True, trigger_seconds=3).trigger == Trigger(once=True, interval_s=3)


def test_produce_options_have_one_definition() -> None:
    """The CLI's defaults and ranges are `ProduceOptions`' own, and code gets the same checks as the CLI."""
    import inspect

    from pulse.cli import produce_command
    from pulse.producer.options import ProduceOptions
    from pulse.producer.simulator import AudienceConfig

    parameters = inspect.signature(produce_command).parameters
    cli_names = {"duration": "duration_s", "hype_every": "hype_every_s", "max_late": "max_late_s"}
    for name in ProduceOptions.model_fields:
        cli_name = next((cli for cli, field in cli_names.items() if field == name), name)
        assert parameters[cli_name].default == ProduceOptions.default(name), name
    audience = AudienceConfig()
    assert (audience.videos, audience.target_rate, audience.hype_every_s) == (
        ProduceOptions.default("videos"),
        ProduceOptions.default("rate"),
        ProduceOptions.default("hype_every_s"),
    )
    for bad in ({"events": 0}, {"events": 10, "late": 2}, {"events": 10, "videos": 0}, {"rate": 5}):
        with pytest.raises(ValueError, match=r"\w"):
            ProduceOptions(**bad)  # type: ignore[arg-type]


def test_the_broker_commands_old_name_is_not_listed() -> None:
    commands = [
        line.strip("│ ").split(" ")[0] for line in CliRunner().invoke(app, ["--help"]).output.splitlines()
    ]
    assert "broker" in commands
    assert "local" not in commands
