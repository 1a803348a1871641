"""Deploy policy over the synthesized JSON: each rule here is a defect a real deploy would hit (issue #12).

Each test reads only ``cdk.tf.json``; none needs a cloud. docs/infra.md ("Deploy defects") explains each
design, and which cloud-only risk each test stands in for.
"""

from __future__ import annotations

import pytest
from infra_testkit import SynthesizedStack

STATEFUL_RESOURCES = ("confluent_kafka_cluster", "azurerm_storage_account", "azurerm_key_vault")


def test_azurerm_provider_makes_no_storage_data_plane_calls(stack: SynthesizedStack) -> None:
    # Defect 1: the lake's firewall denies the runner, so any blob/dfs call from Terraform would fail.
    (provider,) = stack.doc["provider"]["azurerm"]
    (features,) = provider["features"]
    assert features["storage"] == [{"data_plane_available": False}]
    # Without the data plane, containers must be addressed through ARM (the account id), not by URL.
    account_id, _ = stack.only("azurerm_storage_account")
    for container in stack.resources("azurerm_storage_container").values():
        assert container["storage_account_id"] == stack.ref("azurerm_storage_account", account_id, "id")
        assert "storage_account_name" not in container


def test_sas_policy_blocks_tokens_longer_than_its_period(stack: SynthesizedStack) -> None:
    # Defect 7: "Log" only records an over-long SAS; "Block" makes Azure refuse it, which docs promise.
    _, account = stack.only("azurerm_storage_account")
    assert account["sas_policy"]["expiration_action"] == "Block"


@pytest.mark.parametrize("resource_type", STATEFUL_RESOURCES)
def test_stateful_resources_cannot_be_destroyed_outside_dev(
    stack: SynthesizedStack, resource_type: str
) -> None:
    # Defect 5: losing the cluster, the lake or the vault loses events, Bronze history or the vault name.
    _, body = stack.only(resource_type)
    protected = body.get("lifecycle", {}).get("prevent_destroy") is True
    assert protected == (stack.config.env in ("staging", "prod"))
