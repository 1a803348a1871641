"""Deploy policy over the synthesized JSON: each rule here is a defect a real deploy would hit (issue #12).

Each test reads only ``cdk.tf.json``; none needs a cloud. docs/infra.md ("Deploy defects") explains each
design, and which cloud-only risk each test stands in for.
"""

from __future__ import annotations

from typing import Any

import pytest
from infra_testkit import KEY_VAULT_SECRET, SynthesizedStack

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


def test_each_environment_keeps_its_state_in_its_own_account(
    synthesized: dict[str, SynthesizedStack], org_stack: SynthesizedStack
) -> None:
    # Defect 4: a deploy identity is granted data access to one state account; prod's state holds the
    # Kafka secrets, so no other environment (nor the org bootstrap) may share its account.
    backends = [s.doc["terraform"]["backend"]["azurerm"] for s in [*synthesized.values(), org_stack]]
    accounts = [(b["resource_group_name"], b["storage_account_name"]) for b in backends]
    assert len(set(accounts)) == len(accounts), accounts
    assert len({b["storage_account_name"] for b in backends}) == len(backends)
    for backend in backends:
        assert backend["use_azuread_auth"] is True


def _org_resources(org_stack: SynthesizedStack, resource_type: str, env: str) -> dict[str, dict[str, Any]]:
    return {
        lid: body
        for lid, body in org_stack.resources(resource_type).items()
        if body["//"]["metadata"]["path"].split("/")[1] == f"env-{env}"
    }


def test_environment_stacks_create_no_organization_level_confluent_objects(stack: SynthesizedStack) -> None:
    # Defect 4: creating environments or service accounts needs an organization-wide role; the stack
    # only looks them up, so its deployer key can be scoped to its own Confluent environment.
    assert not stack.resources("confluent_environment")
    assert not stack.resources("confluent_service_account")
    env = stack.config.env
    (environment,) = stack.doc["data"]["confluent_environment"].values()
    assert environment == {"display_name": f"pulse-kafka-{env}"} | {"//": environment["//"]}
    accounts = sorted(a["display_name"] for a in stack.doc["data"]["confluent_service_account"].values())
    assert accounts == [f"pulse-databricks-{env}", f"pulse-kafka-admin-{env}", f"pulse-producer-{env}"]
    cluster_id, _ = stack.only("confluent_kafka_cluster")
    for binding in stack.resources("confluent_role_binding").values():
        assert binding["role_name"] == "CloudClusterAdmin"
        assert binding["crn_pattern"] == stack.ref("confluent_kafka_cluster", cluster_id, "rbac_crn")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_each_deployer_key_reaches_only_its_own_environment(org_stack: SynthesizedStack, env: str) -> None:
    # Defect 4: dev's deploy key must not be able to touch prod (it used to be an OrganizationAdmin key).
    roles = {b["role_name"] for b in org_stack.resources("confluent_role_binding").values()}
    assert roles <= {"EnvironmentAdmin", "ResourceOwner"}, "no organization-wide role for any deployer"
    (env_id,) = _org_resources(org_stack, "confluent_environment", env)
    accounts = _org_resources(org_stack, "confluent_service_account", env)
    (deployer_id,) = [lid for lid, a in accounts.items() if a["display_name"] == f"pulse-deployer-{env}"]
    workload_ids = {lid for lid in accounts if lid != deployer_id}
    assert len(workload_ids) == 3
    deployer = f"User:{org_stack.ref('confluent_service_account', deployer_id, 'id')}"
    bindings = [
        b for b in org_stack.resources("confluent_role_binding").values() if b["principal"] == deployer
    ]
    assert {b["role_name"] for b in bindings} == {"EnvironmentAdmin", "ResourceOwner"}
    for binding in bindings:
        if binding["role_name"] == "EnvironmentAdmin":
            assert binding["crn_pattern"] == org_stack.ref("confluent_environment", env_id, "resource_name")
        else:
            owned = binding["crn_pattern"].rsplit("/service-account=", 1)[1]
            assert owned in {org_stack.ref("confluent_service_account", lid, "id") for lid in workload_ids}
    (key,) = _org_resources(org_stack, "confluent_api_key", env).values()
    assert key["owner"]["id"] == org_stack.ref("confluent_service_account", deployer_id, "id")
    assert "managed_resource" not in key, "a Cloud key, whose reach is its owner's role bindings"


def _job_principal(stack: SynthesizedStack) -> str:
    principal_id, principal = stack.only("databricks_service_principal")
    assert principal["display_name"] == f"pulse-jobs-{stack.config.env}"
    return stack.ref("databricks_service_principal", principal_id, "application_id")


def _grants_on(stack: SynthesizedStack, kind: str, target: str) -> dict[str, list[str]]:
    matches = [g for g in stack.resources("databricks_grants").values() if g.get(kind) == target]
    assert len(matches) == 1, f"expected one databricks_grants on {kind} {target}, found {len(matches)}"
    return {grant["principal"]: sorted(grant["privileges"]) for grant in matches[0]["grant"]}


def test_external_locations_validate_through_a_firewall_that_admits_their_identity(
    stack: SynthesizedStack,
) -> None:
    # Defect 3: UC validates a location from the Databricks control plane as the credential's access
    # connector. Azure ignores resource instance rules when public network access is disabled, so the lake
    # must be "enabled from selected networks" with that rule, and nothing else let in.
    _, account = stack.only("azurerm_storage_account")
    rules = account["network_rules"]
    assert account["public_network_access_enabled"] is True
    assert rules["default_action"] == "Deny"
    assert rules.get("ip_rules", []) == []
    assert rules.get("virtual_network_subnet_ids", []) == []
    _, credential = stack.only("databricks_storage_credential")
    connector = credential["azure_managed_identity"]["access_connector_id"]
    assert [r["endpoint_resource_id"] for r in rules["private_link_access"]] == [connector]
    locations = stack.resources("databricks_external_location")
    assert locations
    for location in locations.values():
        assert location.get("skip_validation") is not True


def test_jobs_run_as_the_environment_service_principal(stack: SynthesizedStack) -> None:
    # Defect 3: without run_as a job runs as whoever deployed first, with that person's rights.
    principal = _job_principal(stack)
    jobs = stack.resources("databricks_job").values()
    assert jobs
    for job in jobs:
        assert job["run_as"] == {"service_principal_name": principal}
    (acl,) = stack.resources("databricks_secret_acl").values()
    assert (acl["principal"], acl["permission"]) == (principal, "READ")
    policy_id, _ = stack.only("databricks_cluster_policy")
    (permissions,) = stack.resources("databricks_permissions").values()
    assert permissions["cluster_policy_id"] == stack.ref("databricks_cluster_policy", policy_id, "id")
    assert permissions["access_control"] == [
        {"service_principal_name": principal, "permission_level": "CAN_USE"}
    ]


@pytest.mark.parametrize("layer", ["bronze", "silver", "gold", "checkpoints"])
def test_job_principal_reads_and_writes_each_layer_location(stack: SynthesizedStack, layer: str) -> None:
    name = f"pulse_{layer}_{stack.config.env}"
    (location_id,) = [
        lid for lid, body in stack.resources("databricks_external_location").items() if body["name"] == name
    ]
    grants = _grants_on(
        stack, "external_location", stack.ref("databricks_external_location", location_id, "id")
    )
    assert grants == {_job_principal(stack): ["READ_FILES", "WRITE_FILES"]}


def test_wheel_lives_in_a_volume_only_the_deployer_writes(stack: SynthesizedStack) -> None:
    # Defect 6: in /Workspace/Shared any workspace user could swap the wheel that runs with the secrets.
    artifacts = stack.config.artifacts
    volume_id, volume = stack.only("databricks_volume")
    catalog_id, catalog = stack.only("databricks_catalog")
    assert catalog["name"] == artifacts.catalog
    assert (volume["name"], volume["volume_type"]) == (artifacts.volume, "MANAGED")
    assert volume["catalog_name"] == stack.ref("databricks_catalog", catalog_id, "name")
    deployer_ref = "${var.deployer_application_id}"
    grants = _grants_on(stack, "volume", stack.ref("databricks_volume", volume_id, "id"))
    assert grants == {_job_principal(stack): ["READ_VOLUME"], deployer_ref: ["READ_VOLUME", "WRITE_VOLUME"]}
    writers = {p for g in stack.resources("databricks_grants").values() for p in _writers(g)}
    assert writers <= {deployer_ref, _job_principal(stack)}
    # Every task installs the wheel from the variable, and the variable only accepts the volume.
    for job in stack.resources("databricks_job").values():
        for task in job["task"]:
            assert task["library"] == [{"whl": "${var.pulse_wheel_uri}"}]
    (validation,) = stack.doc["variable"]["pulse_wheel_uri"]["validation"]
    assert f'startswith(var.pulse_wheel_uri, "{artifacts.wheels_dir}/")' in validation["condition"]
    assert "/Workspace" not in stack.text


def _writers(grants: dict[str, Any]) -> list[str]:
    return [
        g["principal"] for g in grants["grant"] if {"WRITE_VOLUME", "ALL_PRIVILEGES"} & set(g["privileges"])
    ]


def test_artifact_paths_are_per_environment_volumes() -> None:
    from infra.config import ENVIRONMENTS

    roots = {config.artifacts.root for config in ENVIRONMENTS.values()}
    assert roots == {f"/Volumes/pulse_{env}/deploy/artifacts" for env in ENVIRONMENTS}
    for config in ENVIRONMENTS.values():
        assert config.artifacts.deploy_record.startswith(config.artifacts.root + "/")
        assert config.artifacts.wheels_dir.startswith(config.artifacts.root + "/")


def test_kafka_secrets_reach_the_vault_without_its_data_plane(stack: SynthesizedStack) -> None:
    # Defect 2: the vault's firewall denies a GitHub-hosted runner (unknown address), so a data-plane write
    # (azurerm_key_vault_secret) gets 403. ARM writes (Microsoft.KeyVault/vaults/secrets) are not filtered.
    assert not stack.resources("azurerm_key_vault_secret")
    vault_id, vault = stack.only("azurerm_key_vault")
    assert vault["network_acls"]["default_action"] == "Deny"
    secrets = list(stack.arm_resources(KEY_VAULT_SECRET).values())
    assert len(secrets) == 4
    for secret in secrets:
        assert secret["parent_id"] == stack.ref("azurerm_key_vault", vault_id, "id")
        # The value travels only in sensitive_body (never in a plan's diff), re-sent when the key changes.
        assert "value" not in secret["body"]["properties"]
        assert secret["sensitive_body"]["properties"]["value"].startswith("${confluent_api_key.")
        assert secret["sensitive_body_version"]["properties.value"].startswith("${confluent_api_key.")
    assert stack.doc["terraform"]["required_providers"]["azapi"]["source"] == "Azure/azapi"


def test_deploy_identity_holds_no_key_vault_data_role(stack: SynthesizedStack) -> None:
    # Writing through ARM needs no data-plane role, so the deploy identity cannot read a secret back.
    client = next(iter(stack.doc["data"]["azurerm_client_config"]))
    deployer = f"${{data.azurerm_client_config.{client}.object_id}}"
    roles = [a["role_definition_name"] for a in stack.resources("azurerm_role_assignment").values()]
    assert not [r for r in roles if r.startswith("Key Vault Secrets Officer")]
    for assignment in stack.resources("azurerm_role_assignment").values():
        assert assignment["principal_id"] != deployer
