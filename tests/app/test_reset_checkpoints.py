"""`pulse reset-checkpoints`: the deploy's state reset, run from the wheel on a job cluster.

Run here on the local Spark session and disk: the same Hadoop file system calls move an abfss:// folder on
Databricks.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pulse.cli import app
from pulse.jobs import Job, Query
from pulse.jobs.state import STATE_VERSIONS

COMMIT = "0123abc"


def test_every_query_has_a_state_version_and_every_job_a_query() -> None:
    assert set(STATE_VERSIONS) == set(Query)
    assert {job.query for job in Job} == set(Query)


def test_the_checkpoint_folders_keep_their_names() -> None:
    """Lakes and deploy records store these names: renaming one would orphan every existing checkpoint."""
    assert {job.value: job.query.value for job in Job} == {
        "all": "pipeline",
        "bronze": "bronze",
        "silver": "refine",
        "gold": "refine",
    }


def test_the_streaming_jobs_name_their_checkpoints_after_their_query() -> None:
    from pulse.jobs import bronze, stream

    names = {Job.all: stream.FROM_KAFKA, Job.bronze: bronze.QUERY, Job.silver: stream.FROM_BRONZE}
    assert all(name == job.query for job, name in names.items())


def test_the_cli_offers_exactly_the_queries_with_a_state_version() -> None:
    result = CliRunner().invoke(app, ["reset-checkpoints", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for query in STATE_VERSIONS:
        assert query.value in result.output


def _checkpoint(lake: Path, job: str) -> Path:
    folder = lake / "_checkpoints" / job
    (folder / "offsets").mkdir(parents=True)
    (folder / "offsets" / "0").write_text(f"{job} offsets")
    (folder / "metadata").write_text(f'{{"id": "{job}"}}')
    return folder


def test_reset_moves_the_named_checkpoints_aside_and_leaves_the_others(
    spark, pulse_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = pulse_home / "lake"
    monkeypatch.setenv("PULSE_LAKE", str(lake))
    pipeline, bronze = _checkpoint(lake, "pipeline"), _checkpoint(lake, "bronze")
    result = CliRunner().invoke(app, ["reset-checkpoints", f"--commit={COMMIT}", "pipeline", "refine"])
    assert result.exit_code == 0, result.output
    moved = lake / "_checkpoints" / "_reset" / COMMIT / "pipeline"
    assert not pipeline.exists()
    assert (moved / "offsets" / "0").read_text() == "pipeline offsets"  # moved whole, nothing deleted
    assert (bronze / "metadata").is_file()  # not named: untouched
    assert "pipeline: checkpoint moved" in result.output
    assert "refine: no checkpoint" in result.output
    # A re-run of the same deploy finds nothing left to move, and says so.
    again = CliRunner().invoke(app, ["reset-checkpoints", f"--commit={COMMIT}", "pipeline"])
    assert again.exit_code == 0, again.output
    assert "pipeline: no checkpoint" in again.output
    assert (moved / "metadata").is_file()


def test_reset_never_moves_a_checkpoint_onto_an_earlier_reset(
    spark, pulse_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = pulse_home / "lake"
    monkeypatch.setenv("PULSE_LAKE", str(lake))
    _checkpoint(lake, "bronze")
    earlier = lake / "_checkpoints" / "_reset" / COMMIT / "bronze"
    earlier.mkdir(parents=True)
    result = CliRunner().invoke(app, ["reset-checkpoints", f"--commit={COMMIT}", "bronze"])
    assert result.exit_code == 1
    assert "exists already" in result.output
    assert (lake / "_checkpoints" / "bronze" / "metadata").is_file()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["reset-checkpoints", "--commit=abc", "gold"], "gold"),
        (["reset-checkpoints", "--commit=../x", "bronze"], "--commit"),
        (["reset-checkpoints", "bronze"], "--commit"),
        (["reset-checkpoints", "--commit=abc"], "Missing argument"),
    ],
)
def test_reset_refuses_bad_arguments_before_it_starts_spark(args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert fragment in result.output
