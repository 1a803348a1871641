"""The typed environment configuration rejects inconsistent sizes and unknown environments."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.config import ENVIRONMENTS, DashboardConfig, DatabricksConfig, KafkaConfig, load_config


def test_three_environments() -> None:
    assert sorted(ENVIRONMENTS) == ["dev", "prod", "staging"]
    assert {c.stack_name for c in ENVIRONMENTS.values()} == {"pulse-dev", "pulse-staging", "pulse-prod"}
    assert len({c.state.key for c in ENVIRONMENTS.values()}) == 3
    assert len({c.vnet_cidr for c in ENVIRONMENTS.values()}) == 3


def test_load_config_rejects_unknown_environment() -> None:
    assert load_config("prod").env == "prod"
    with pytest.raises(KeyError, match="unknown environment"):
        load_config("qa")


def test_basic_kafka_cluster_must_be_single_zone() -> None:
    with pytest.raises(ValidationError, match="single-zone"):
        KafkaConfig(
            cluster_type="basic",
            availability="MULTI_ZONE",
            cloud_region="westeurope",
            partitions=1,
            retention_ms=1,
        )


def test_autoscale_and_replica_bounds_are_checked() -> None:
    with pytest.raises(ValidationError, match="min_workers"):
        DatabricksConfig(
            node_type="x", min_workers=3, max_workers=2, maintenance_paused=True, pipeline_paused=True
        )
    with pytest.raises(ValidationError, match="min_replicas"):
        DashboardConfig(cpu=0.5, memory="1Gi", min_replicas=3, max_replicas=2)


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError):
        ENVIRONMENTS["dev"].region = "eastus"  # type: ignore[misc]


def test_dev_is_cheapest_and_paused() -> None:
    dev, prod = ENVIRONMENTS["dev"], ENVIRONMENTS["prod"]
    assert dev.kafka.cluster_type == "basic"
    assert prod.kafka.cluster_type == "standard"
    assert dev.databricks.maintenance_paused
    assert not prod.databricks.maintenance_paused
    assert dev.dashboard.max_replicas <= prod.dashboard.max_replicas
