"""Synthesis tests: each environment's stack has the expected resources with the expected properties."""

from __future__ import annotations

import re
from typing import Any

import cdktf
import pytest
from infra_testkit import KEY_VAULT_SECRET, SynthesizedStack

from infra.components.confluent import CONSUMER_GROUP_PREFIX, TOPIC_NAME
from infra.config import ENVIRONMENTS
from infra.stack import OUTPUT_NAMES


def _by_name(stack: SynthesizedStack, resource_type: str, name: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (lid, body) for lid, body in stack.resources(resource_type).items() if body.get("name") == name
    ]
    assert len(matches) == 1, f"expected one {resource_type} named {name!r}, found {len(matches)}"
    return matches[0]


def test_one_stack_per_environment_with_its_own_state_key(synthesized: dict[str, SynthesizedStack]) -> None:
    assert sorted(synthesized) == ["dev", "prod", "staging"]
    keys = set()
    for env, stack in synthesized.items():
        assert stack.doc["//"]["metadata"]["stackName"] == f"pulse-{env}"
        backend = stack.doc["terraform"]["backend"]
        assert list(backend) == ["azurerm"]
        assert backend["azurerm"]["key"] == f"pulse-{env}.tfstate"
        assert backend["azurerm"]["use_azuread_auth"] is True
        keys.add(backend["azurerm"]["key"])
    assert len(keys) == 3


def test_storage_account_is_hardened_adls_gen2(stack: SynthesizedStack) -> None:
    assert cdktf.Testing.to_have_resource_with_properties(
        stack.text,
        "azurerm_storage_account",
        {
            "is_hns_enabled": True,
            "min_tls_version": "TLS1_2",
            "https_traffic_only_enabled": True,
            "allow_nested_items_to_be_public": False,
            "shared_access_key_enabled": False,
            "sas_policy": {"expiration_period": "00.01:00:00", "expiration_action": "Block"},
            "network_rules": {"default_action": "Deny"},
            "account_replication_type": stack.config.storage_replication,
        },
    )
    _, account = stack.only("azurerm_storage_account")
    retention = account["blob_properties"]["delete_retention_policy"]["days"]
    assert retention == stack.config.soft_delete_days
    assert re.fullmatch(r"[a-z0-9]{3,24}", account["name"])


def test_sas_policy_caps_lifetime_at_one_hour(stack: SynthesizedStack) -> None:
    _, account = stack.only("azurerm_storage_account")
    days, clock = account["sas_policy"]["expiration_period"].split(".")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    assert int(days) * 86400 + hours * 3600 + minutes * 60 + seconds <= 3600


def test_lake_has_private_container_per_layer(stack: SynthesizedStack) -> None:
    account_id, _ = stack.only("azurerm_storage_account")
    containers = stack.resources("azurerm_storage_container").values()
    assert sorted(c["name"] for c in containers) == ["artifacts", "bronze", "checkpoints", "gold", "silver"]
    for container in containers:
        assert container["container_access_type"] == "private"
        assert container["storage_account_id"] == stack.ref("azurerm_storage_account", account_id, "id")


def test_lake_lifecycle_only_tiers_bronze(stack: SynthesizedStack) -> None:
    _, policy = stack.only("azurerm_storage_management_policy")
    (rule,) = policy["rule"]
    assert rule["filters"]["prefix_match"] == ["bronze/"]
    base_blob = rule["actions"]["base_blob"]
    assert base_blob == {
        "tier_to_cool_after_days_since_modification_greater_than": stack.config.bronze_cool_after_days
    }


def test_blob_requests_are_logged_to_log_analytics(stack: SynthesizedStack) -> None:
    account_id, _ = stack.only("azurerm_storage_account")
    workspace_id, _ = stack.only("azurerm_log_analytics_workspace")
    blob_target = stack.ref("azurerm_storage_account", account_id, "id") + "/blobServices/default"
    settings = [
        s
        for s in stack.resources("azurerm_monitor_diagnostic_setting").values()
        if s["target_resource_id"] == blob_target
    ]
    assert len(settings) == 1
    assert settings[0]["log_analytics_workspace_id"] == stack.ref(
        "azurerm_log_analytics_workspace", workspace_id, "id"
    )
    categories = {log["category"] for log in settings[0]["enabled_log"]}
    assert categories == {"StorageRead", "StorageWrite", "StorageDelete"}


def test_lake_is_reached_through_private_endpoints(stack: SynthesizedStack) -> None:
    account_id, _ = stack.only("azurerm_storage_account")
    account_ref = stack.ref("azurerm_storage_account", account_id, "id")
    sub_resources = sorted(
        endpoint["private_service_connection"]["subresource_names"][0]
        for endpoint in stack.resources("azurerm_private_endpoint").values()
        if endpoint["private_service_connection"]["private_connection_resource_id"] == account_ref
    )
    assert sub_resources == ["blob", "dfs"]


def test_topic_partitions_retention_and_cleanup_per_environment(stack: SynthesizedStack) -> None:
    _, topic = stack.only("confluent_kafka_topic")
    kafka = stack.config.kafka
    assert topic["topic_name"] == TOPIC_NAME
    assert topic["partitions_count"] == kafka.partitions
    assert topic["config"] == {"cleanup.policy": "delete", "retention.ms": str(kafka.retention_ms)}
    assert topic["credentials"]["secret"].startswith("${confluent_api_key.")


def test_partitions_grow_from_dev_to_prod() -> None:
    partitions = [ENVIRONMENTS[env].kafka.partitions for env in ("dev", "staging", "prod")]
    assert partitions == sorted(partitions)
    assert partitions[0] < partitions[-1]


@pytest.mark.parametrize(
    ("env", "cluster_type"), [("dev", "basic"), ("staging", "standard"), ("prod", "standard")]
)
def test_kafka_cluster_type(synthesized: dict[str, SynthesizedStack], env: str, cluster_type: str) -> None:
    _, cluster = synthesized[env].only("confluent_kafka_cluster")
    assert cluster[cluster_type] == [{}]
    assert {"basic", "standard", "dedicated", "enterprise"} & set(cluster) == {cluster_type}
    assert cluster["cloud"] == "AZURE"


def test_acls_are_exactly_the_least_privilege_set(stack: SynthesizedStack) -> None:
    role_of_principal = {
        f"User:${{data.confluent_service_account.{lid}.id}}": body["display_name"].split("-")[1]
        for lid, body in stack.doc["data"]["confluent_service_account"].items()
    }
    acls = {
        (
            role_of_principal[acl["principal"]],
            acl["resource_type"],
            acl["resource_name"],
            acl["pattern_type"],
            acl["operation"],
            acl["permission"],
            acl["host"],
        )
        for acl in stack.resources("confluent_kafka_acl").values()
    }
    assert len(stack.resources("confluent_kafka_acl")) == 4
    assert acls == {
        ("producer", "TOPIC", TOPIC_NAME, "LITERAL", "WRITE", "ALLOW", "*"),
        ("producer", "TOPIC", TOPIC_NAME, "LITERAL", "DESCRIBE", "ALLOW", "*"),
        ("databricks", "TOPIC", TOPIC_NAME, "LITERAL", "READ", "ALLOW", "*"),
        ("databricks", "GROUP", CONSUMER_GROUP_PREFIX, "PREFIXED", "READ", "ALLOW", "*"),
    }


def test_workload_service_accounts_and_keys(stack: SynthesizedStack) -> None:
    names = sorted(a["display_name"] for a in stack.doc["data"]["confluent_service_account"].values())
    env = stack.config.env
    assert names == [f"pulse-databricks-{env}", f"pulse-kafka-admin-{env}", f"pulse-producer-{env}"]
    assert len(stack.resources("confluent_api_key")) == 3
    (binding,) = stack.resources("confluent_role_binding").values()
    assert binding["role_name"] == "CloudClusterAdmin"


def test_kafka_keys_are_written_to_key_vault(stack: SynthesizedStack) -> None:
    vault_id, _ = stack.only("azurerm_key_vault")
    secrets = {s["name"]: s for s in stack.arm_resources(KEY_VAULT_SECRET).values()}
    assert sorted(secrets) == [
        "kafka-databricks-api-key",
        "kafka-databricks-api-secret",
        "kafka-producer-api-key",
        "kafka-producer-api-secret",
    ]
    expiry = int(stack.config.secret_expiry.timestamp())
    for name, secret in secrets.items():
        attribute = "secret" if name.endswith("-secret") else "id"
        value = secret["sensitive_body"]["properties"]["value"]
        assert re.fullmatch(r"\$\{confluent_api_key\.[\w-]+\." + attribute + r"\}", value)
        assert secret["parent_id"] == stack.ref("azurerm_key_vault", vault_id, "id")
        assert secret["body"]["properties"]["attributes"]["exp"] == expiry
        assert secret["body"]["properties"]["contentType"] == "text/plain"


def test_key_vault_uses_rbac_purge_protection_and_firewall(stack: SynthesizedStack) -> None:
    assert cdktf.Testing.to_have_resource_with_properties(
        stack.text,
        "azurerm_key_vault",
        {
            "rbac_authorization_enabled": True,
            "purge_protection_enabled": True,
            "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
        },
    )


def test_dashboard_identity_reads_only_the_gold_container(stack: SynthesizedStack) -> None:
    app_id, _ = stack.only("azurerm_container_app")
    principal = stack.ref("azurerm_container_app", app_id, "identity[0].principal_id")
    gold_id, _ = _by_name(stack, "azurerm_storage_container", "gold")
    account_id, _ = stack.only("azurerm_storage_account")
    grants = {
        (a["role_definition_name"], a["scope"])
        for a in stack.resources("azurerm_role_assignment").values()
        if a["principal_id"] == principal
    }
    assert grants == {
        ("Storage Blob Data Reader", stack.ref("azurerm_storage_container", gold_id, "resource_manager_id")),
        ("Storage Blob Delegator", stack.ref("azurerm_storage_account", account_id, "id")),
    }


def test_dashboard_app_ingress_replicas_and_probes(stack: SynthesizedStack) -> None:
    sizing = stack.config.dashboard
    _, app = stack.only("azurerm_container_app")
    assert app["identity"]["type"] == "SystemAssigned"
    assert app["ingress"]["external_enabled"] is True
    assert app["ingress"]["allow_insecure_connections"] is False
    template = app["template"]
    assert (template["min_replicas"], template["max_replicas"]) == (sizing.min_replicas, sizing.max_replicas)
    (container,) = template["container"]
    assert container["image"] == "${var.dashboard_image}"
    for probe in ("liveness_probe", "readiness_probe"):
        assert container[probe][0]["path"] == "/_stcore/health"
        assert container[probe][0]["port"] == 8501


def _jobs(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    return {job["name"].split("-")[1]: job for job in stack.resources("databricks_job").values()}


def test_streaming_job_runs_every_layer_in_one_continuous_task(stack: SynthesizedStack) -> None:
    if stack.config.pipeline_mode != "continuous":
        pytest.skip("this environment runs the pipeline on a schedule (test_infra_pipeline_mode.py)")
    job = _jobs(stack)["pipeline"]
    tasks = job["task"]
    assert [t["task_key"] for t in tasks] == ["pipeline-all"]
    for task in tasks:
        assert task["python_wheel_task"] == {
            "package_name": "pulse",
            "entry_point": "pulse",
            "parameters": ["pipeline", "all"],
        }
        assert task["library"] == [{"whl": "${var.pulse_wheel_uri}"}]
        assert task["job_cluster_key"] == "pipeline"
        # Unbounded streams never finish, so a dependency would starve the downstream layer.
        assert "depends_on" not in task
    assert job["continuous"]["task_retry_mode"] == "ON_FAILURE"
    assert "schedule" not in job
    assert job["email_notifications"]["on_failure"] == "${var.alert_emails}"
    env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
    assert env_vars["PULSE_KAFKA_TOPIC"] == TOPIC_NAME
    assert env_vars["PULSE_KAFKA_API_SECRET"].startswith("{{secrets/")


def test_maintenance_job_is_scheduled_wheel_entry_point(stack: SynthesizedStack) -> None:
    job = _jobs(stack)["maintenance"]
    (task,) = job["task"]
    assert task["python_wheel_task"] == {
        "package_name": "pulse",
        "entry_point": "pulse",
        "parameters": ["maintenance"],
    }
    assert task["max_retries"] >= 1
    assert job["schedule"]["quartz_cron_expression"] == stack.config.databricks.maintenance_cron
    assert job["email_notifications"]["on_failure"] == "${var.alert_emails}"


@pytest.mark.parametrize(
    ("env", "status"), [("dev", "PAUSED"), ("staging", "UNPAUSED"), ("prod", "UNPAUSED")]
)
def test_schedule_paused_only_in_dev(synthesized: dict[str, SynthesizedStack], env: str, status: str) -> None:
    jobs = _jobs(synthesized[env])
    assert jobs["maintenance"]["schedule"]["pause_status"] == status
    trigger = "continuous" if synthesized[env].config.pipeline_mode == "continuous" else "schedule"
    assert jobs["pipeline"][trigger]["pause_status"] == status


def _cluster_capacity(stack: SynthesizedStack) -> tuple[int, int]:
    cluster = _jobs(stack)["pipeline"]["job_cluster"][0]["new_cluster"]
    size = re.fullmatch(r"Standard_[A-Z]+(\d+)\w*", cluster["node_type_id"])
    assert size is not None, cluster["node_type_id"]
    return int(size.group(1)), cluster["autoscale"]["max_workers"]


def test_prod_cluster_is_larger_than_dev(synthesized: dict[str, SynthesizedStack]) -> None:
    dev_vcpus, dev_workers = _cluster_capacity(synthesized["dev"])
    prod_vcpus, prod_workers = _cluster_capacity(synthesized["prod"])
    assert prod_vcpus >= dev_vcpus
    assert prod_workers > dev_workers
    assert prod_vcpus * prod_workers > dev_vcpus * dev_workers


def test_job_clusters_follow_the_cluster_policy(stack: SynthesizedStack) -> None:
    policy_id, policy = stack.only("databricks_cluster_policy")
    for job in _jobs(stack).values():
        cluster = job["job_cluster"][0]["new_cluster"]
        assert cluster["policy_id"] == stack.ref("databricks_cluster_policy", policy_id, "id")
        assert cluster["autoscale"]["max_workers"] <= stack.config.databricks.max_workers
    assert stack.config.databricks.node_type in policy["definition"]


def test_databricks_workspace_is_premium_vnet_injected_without_public_ips(stack: SynthesizedStack) -> None:
    assert cdktf.Testing.to_have_resource_with_properties(
        stack.text,
        "azurerm_databricks_workspace",
        {"sku": "premium", "custom_parameters": {"no_public_ip": True}},
    )
    _, workspace = stack.only("azurerm_databricks_workspace")
    assert workspace["custom_parameters"]["virtual_network_id"].startswith("${azurerm_virtual_network.")


def test_outputs(stack: SynthesizedStack) -> None:
    outputs = stack.doc["output"]
    assert sorted(outputs) == sorted(OUTPUT_NAMES)
    assert re.fullmatch(
        r"https://\$\{azurerm_container_app\.[\w-]+\.ingress\[0\]\.fqdn\}", outputs["dashboard_url"]["value"]
    )
    assert outputs["storage_account_name"]["value"].startswith("${azurerm_storage_account.")
    assert outputs["databricks_workspace_url"]["value"].startswith("https://${azurerm_databricks_workspace.")
    assert "bootstrap_endpoint" in outputs["kafka_bootstrap_endpoint"]["value"]


def test_confluent_provider_takes_credentials_from_variables(stack: SynthesizedStack) -> None:
    assert cdktf.Testing.to_have_provider_with_properties(
        stack.text,
        "confluent",
        {
            "cloud_api_key": "${var.confluent_cloud_api_key}",
            "cloud_api_secret": "${var.confluent_cloud_api_secret}",
        },
    )
    assert stack.doc["terraform"]["required_providers"]["confluent"]["source"] == "confluentinc/confluent"


def test_matchers_reject_wrong_properties(stack: SynthesizedStack) -> None:
    # Guards against a matcher that always answers True.
    assert not cdktf.Testing.to_have_resource_with_properties(
        stack.text, "azurerm_storage_account", {"min_tls_version": "TLS1_0"}
    )
