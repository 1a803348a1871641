"""Each environment runs the pipeline either continuously or on a schedule, from the same wheel entry point.

The mode comes from the stack config (``EnvConfig.pipeline_mode``): ``scheduled`` in dev (a cluster only
while a batch runs), ``continuous`` in staging and prod. These tests read the synthesized jobs.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_testkit import SynthesizedStack
from pydantic import ValidationError

from infra.config import DATABRICKS_GOLD_WRITER, ENVIRONMENTS, DatabricksConfig

EXPECTED_MODES = [("dev", "scheduled"), ("staging", "continuous"), ("prod", "continuous")]


def _pipeline_job(stack: SynthesizedStack) -> dict[str, Any]:
    jobs = [j for j in stack.resources("databricks_job").values() if j["name"].startswith("pulse-pipeline-")]
    assert len(jobs) == 1, [j["name"] for j in stack.resources("databricks_job").values()]
    return jobs[0]


def _wheel_calls(job: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (
            t["python_wheel_task"]["package_name"],
            t["python_wheel_task"]["entry_point"],
            tuple(t["python_wheel_task"]["parameters"]),
        )
        for t in job["task"]
    ]


@pytest.mark.parametrize(("env", "mode"), EXPECTED_MODES)
def test_each_environment_has_its_default_mode(env: str, mode: str) -> None:
    assert ENVIRONMENTS[env].pipeline_mode == mode


@pytest.mark.parametrize(("env", "mode"), EXPECTED_MODES)
def test_pipeline_job_trigger_follows_the_mode(
    synthesized: dict[str, SynthesizedStack], env: str, mode: str
) -> None:
    stack = synthesized[env]
    job = _pipeline_job(stack)
    dbx = stack.config.databricks
    status = "PAUSED" if dbx.pipeline_paused else "UNPAUSED"
    if mode == "continuous":
        assert "schedule" not in job
        assert job["continuous"] == {"pause_status": status, "task_retry_mode": "ON_FAILURE"}
        assert _wheel_calls(job) == [("pulse", "pulse", ("pipeline", "all"))]
    else:
        assert "continuous" not in job
        assert job["schedule"] == {
            "quartz_cron_expression": dbx.pipeline_cron,
            "timezone_id": "UTC",
            "pause_status": status,
        }
        # Every layer runs once (availableNow) and stops, so the cluster only lives while a batch runs.
        assert _wheel_calls(job) == [
            ("pulse", "pulse", ("pipeline", "bronze", "--once")),
            ("pulse", "pulse", ("pipeline", "silver", "--once")),
        ]


def test_scheduled_layers_run_in_order_and_end(synthesized: dict[str, SynthesizedStack]) -> None:
    job = _pipeline_job(synthesized["dev"])
    bronze, silver = job["task"]
    assert "depends_on" not in bronze
    assert silver["depends_on"] == [{"task_key": bronze["task_key"]}]
    for task in job["task"]:
        assert task["timeout_seconds"] > 0, "a --once task that hangs must not hold the cluster forever"
        assert task["library"] == [{"whl": "${var.pulse_wheel_uri}"}]
        assert task["job_cluster_key"] == job["job_cluster"][0]["job_cluster_key"]


def test_both_modes_share_the_entry_point_and_cluster_settings(
    synthesized: dict[str, SynthesizedStack],
) -> None:
    scheduled, continuous = _pipeline_job(synthesized["dev"]), _pipeline_job(synthesized["prod"])
    assert {call[:2] for call in _wheel_calls(scheduled)} == {call[:2] for call in _wheel_calls(continuous)}
    dev_env = scheduled["job_cluster"][0]["new_cluster"]["spark_env_vars"]
    prod_env = continuous["job_cluster"][0]["new_cluster"]["spark_env_vars"]
    assert sorted(dev_env) == sorted(prod_env)


def test_jobs_run_the_gold_writer_the_exactness_test_checks(stack: SynthesizedStack) -> None:
    """Every job names its Gold writer, from the constant tests/e2e/test_gold_exactness.py runs with."""
    from pulse_core.settings import PulseSettings

    for job in stack.resources("databricks_job").values():
        env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
        assert env_vars["PULSE_GOLD_WRITER"] == DATABRICKS_GOLD_WRITER
    assert PulseSettings(gold_writer=DATABRICKS_GOLD_WRITER).gold_writer == DATABRICKS_GOLD_WRITER


def test_mode_can_be_overridden_per_environment() -> None:
    dev = ENVIRONMENTS["dev"]
    continuous_dev = dev.model_copy(
        update={"databricks": dev.databricks.model_copy(update={"pipeline_mode": "continuous"})}
    )
    assert continuous_dev.pipeline_mode == "continuous"


def test_unknown_mode_is_rejected_with_the_allowed_values() -> None:
    with pytest.raises(
        ValidationError, match=r"pipeline_mode must be one of continuous, scheduled; got 'hourly'"
    ):
        DatabricksConfig(
            node_type="x",
            min_workers=1,
            max_workers=1,
            maintenance_paused=True,
            pipeline_paused=True,
            pipeline_mode="hourly",
        )
