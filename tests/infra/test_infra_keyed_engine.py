"""An environment runs the keyed engine by saying so (``databricks.engine``): its pipeline's tasks then
install the operator's jar beside the wheel, from the deployer-only volume, and name the engine and its
state partitions; every other environment names the driver engine and installs no jar."""

from __future__ import annotations

from typing import Any

import pytest
from infra_testkit import SynthesizedStack, keyed_staging_config
from pydantic import ValidationError

from infra.config import ENVIRONMENTS, EnvConfig

WHEEL = {"whl": "${var.pulse_wheel_uri}"}
JAR = {"jar": "${var.pulse_engine_jar_uri}"}


def _jobs(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    return {j["name"].split("-")[-2]: j for j in stack.resources("databricks_job").values()}


def test_the_keyed_engines_pipeline_tasks_install_its_jar_beside_the_wheel(
    keyed_staging: SynthesizedStack,
) -> None:
    jobs = _jobs(keyed_staging)
    assert [task["library"] for task in jobs["pipeline"]["task"]] == [[WHEEL, JAR]]
    assert [task["library"] for task in jobs["maintenance"]["task"]] == [[WHEEL]], "maintenance runs no query"
    for job in jobs.values():
        env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
        assert env_vars["PULSE_ENGINE"] == "keyed"
        assert env_vars["PULSE_STATE_PARTITIONS"] == "32"


def test_the_jar_comes_only_from_the_deployer_only_volume(keyed_staging: SynthesizedStack) -> None:
    assert keyed_staging.config is not None
    wheels_dir = keyed_staging.config.artifacts.wheels_dir
    (validation,) = keyed_staging.doc["variable"]["pulse_engine_jar_uri"]["validation"]
    condition = validation["condition"]
    assert f'startswith(var.pulse_engine_jar_uri, "{wheels_dir}/")' in condition
    assert 'endswith(var.pulse_engine_jar_uri, ".jar")' in condition
    assert '!strcontains(var.pulse_engine_jar_uri, "..")' in condition


def test_the_driver_engines_environments_name_it_and_install_no_jar(stack: SynthesizedStack) -> None:
    assert stack.config is not None
    assert stack.config.databricks.engine == "driver"
    assert "pulse_engine_jar_uri" not in stack.doc["variable"]
    for job in _jobs(stack).values():
        assert all(task["library"] == [WHEEL] for task in job["task"])
        env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
        assert env_vars["PULSE_ENGINE"] == "driver"
        assert "PULSE_STATE_PARTITIONS" not in env_vars


def _with_databricks(env: str, **changes: object) -> EnvConfig:
    config = ENVIRONMENTS[env]
    databricks = config.databricks.model_dump() | changes
    return EnvConfig.model_validate(config.model_dump() | {"databricks": databricks})


def test_the_keyed_engine_needs_the_continuous_mode_and_partitions_need_it() -> None:
    assert keyed_staging_config().databricks.engine == "keyed"
    with pytest.raises(ValidationError, match="only the continuous mode runs"):
        _with_databricks("dev", engine="keyed")  # dev's mode is scheduled: the refine job is the driver's
    with pytest.raises(ValidationError, match="state_partitions sizes the keyed engine's state"):
        _with_databricks("prod", state_partitions=64)
    assert _with_databricks("dev", engine="keyed", pipeline_mode="continuous").databricks.engine == "keyed"
