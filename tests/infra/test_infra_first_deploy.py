"""Deploy policy of issue 23 ("the first real deploy succeeds"), over the synthesized JSON and the docs.

Each test stands in for a failure only a real first deploy or promotion would show; docs/infra.md
("Deploy defects fixed for the first deploy and promotion") explains each design.
"""

from __future__ import annotations

import re
from pathlib import Path

from infra_testkit import REPO_ROOT, SynthesizedStack

INFRA_DOC = REPO_ROOT / "docs" / "infra.md"
DELIVERY_DOC = REPO_ROOT / "docs" / "delivery.md"
# Which Azure resource provider each resource type of the stack belongs to (Azure's "Resource providers for
# Azure services"). A new resource type fails the test until it is listed here.
NAMESPACE_BY_TYPE = {
    "azurerm_container_app": "Microsoft.App",
    "azurerm_container_app_environment": "Microsoft.App",
    "azurerm_databricks_access_connector": "Microsoft.Databricks",
    "azurerm_databricks_workspace": "Microsoft.Databricks",
    "azurerm_key_vault": "Microsoft.KeyVault",
    "azurerm_log_analytics_workspace": "Microsoft.OperationalInsights",
    "azurerm_monitor_diagnostic_setting": "Microsoft.Insights",
    "azurerm_nat_gateway": "Microsoft.Network",
    "azurerm_nat_gateway_public_ip_association": "Microsoft.Network",
    "azurerm_network_security_group": "Microsoft.Network",
    "azurerm_private_dns_zone": "Microsoft.Network",
    "azurerm_private_dns_zone_virtual_network_link": "Microsoft.Network",
    "azurerm_private_endpoint": "Microsoft.Network",
    "azurerm_public_ip": "Microsoft.Network",
    "azurerm_subnet": "Microsoft.Network",
    "azurerm_subnet_nat_gateway_association": "Microsoft.Network",
    "azurerm_subnet_network_security_group_association": "Microsoft.Network",
    "azurerm_virtual_network": "Microsoft.Network",
    "azurerm_role_assignment": "Microsoft.Authorization",
    "azurerm_storage_account": "Microsoft.Storage",
    "azurerm_storage_container": "Microsoft.Storage",
    "azurerm_storage_management_policy": "Microsoft.Storage",
}
# Registered in every subscription from the start.
ALWAYS_REGISTERED = {"Microsoft.Authorization", "Microsoft.Resources"}
MIN_PROPAGATION_SECONDS = 120


def _job_principal_ref(stack: SynthesizedStack) -> str:
    principal_id, _ = stack.only("databricks_service_principal")
    return stack.ref("databricks_service_principal", principal_id, "application_id")


def test_the_deployer_may_run_the_jobs_as_their_principal(stack: SynthesizedStack) -> None:
    # Defect 1: run_as a service principal needs Service Principal User on it; Manager does not include it.
    rule_set_id, rule_set = stack.only("databricks_access_control_rule_set")
    assert rule_set["name"] == (
        f"accounts/${{var.databricks_account_id}}/servicePrincipals/{_job_principal_ref(stack)}/ruleSets/default"
    )
    roles = {(rule["role"], who) for rule in rule_set["grant_rules"] for who in rule["principals"]}
    deployer = "servicePrincipals/${var.deployer_application_id}"
    assert ("roles/servicePrincipal.user", deployer) in roles
    assert ("roles/servicePrincipal.manager", deployer) in roles, "authoritative: keep the creator's role"
    for job in stack.resources("databricks_job").values():
        assert f"databricks_access_control_rule_set.{rule_set_id}" in job.get("depends_on", [])


def test_the_deploy_identity_is_named_by_a_variable_not_read_at_plan_time(stack: SynthesizedStack) -> None:
    # Defect 2: databricks_current_user is evaluated as whoever plans, so the volume's WRITE grant would
    # follow the plan identity and the deploy identity's upload would fail.
    assert "databricks_current_user" not in stack.doc.get("data", {})
    for name in ("deployer_application_id", "databricks_account_id"):
        variable = stack.doc["variable"][name]
        assert "default" not in variable
        (validation,) = variable["validation"]
        assert "regex(" in validation["condition"]
    grants = [g for body in stack.resources("databricks_grants").values() for g in body["grant"]]
    writers = {g["principal"] for g in grants if "WRITE_VOLUME" in g["privileges"]}
    assert writers == {"${var.deployer_application_id}"}


def _namespaces(stack: SynthesizedStack) -> set[str]:
    types = {t for t in stack.doc["resource"] if t.startswith("azurerm_")}
    unknown = types - set(NAMESPACE_BY_TYPE)
    assert not unknown, f"list the resource provider of {sorted(unknown)} in NAMESPACE_BY_TYPE"
    found = {NAMESPACE_BY_TYPE[t] for t in types}
    found |= {body["type"].split("/")[0] for body in stack.resources("azapi_resource").values()}
    return found


def test_every_resource_provider_the_stack_uses_is_registered_at_bootstrap(stack: SynthesizedStack) -> None:
    # Defect 3: the provider's default ("legacy") registrations lack Microsoft.App, so a fresh subscription
    # fails with MissingSubscriptionRegistration; the deploy identity may not register providers itself.
    from infra.stack import REQUIRED_RESOURCE_PROVIDERS

    (provider,) = stack.doc["provider"]["azurerm"]
    assert provider["resource_provider_registrations"] == "none"
    assert "Microsoft.App" in REQUIRED_RESOURCE_PROVIDERS
    missing = _namespaces(stack) - ALWAYS_REGISTERED - set(REQUIRED_RESOURCE_PROVIDERS)
    assert not missing, f"not registered at bootstrap: {sorted(missing)}"
    doc = INFRA_DOC.read_text()
    for namespace in REQUIRED_RESOURCE_PROVIDERS:
        assert f"az provider register --wait --namespace {namespace}" in doc


def test_the_container_apps_environment_keeps_its_infrastructure_group(stack: SynthesizedStack) -> None:
    # Defect 4: with a workload profile and no name, Azure generates the group and every later plan
    # replaces the environment (and the dashboard URL).
    _, environment = stack.only("azurerm_container_app_environment")
    assert environment["workload_profile"]
    name = environment["infrastructure_resource_group_name"]
    assert name == f"pulse-apps-infra-{stack.config.env}"
    _, workspace = stack.only("azurerm_databricks_workspace")
    assert name not in {stack.config.resource_group_name, workspace["managed_resource_group_name"]}


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match, duration
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def test_unity_catalog_waits_until_the_lake_role_has_propagated(stack: SynthesizedStack) -> None:
    # Defect 8: the external locations validate as the access connector right after its role assignment;
    # Azure takes minutes to propagate it, so the first apply failed with a 403.
    # The connector Unity Catalog uses gets the lake account; the jobs' delta-rs identity gets containers
    # (tests/infra/test_infra_delta_rs_credential.py checks its own wait).
    account = stack.ref("azurerm_storage_account", stack.only("azurerm_storage_account")[0], "id")
    (assignment_id,) = [
        lid
        for lid, body in stack.resources("azurerm_role_assignment").items()
        if body["role_definition_name"] == "Storage Blob Data Contributor" and body["scope"] == account
    ]
    (sleep_id, sleep), *_ = [
        (lid, body)
        for lid, body in stack.resources("time_sleep").items()
        if f"azurerm_role_assignment.{assignment_id}" in body["depends_on"]
    ]
    assert sleep["depends_on"] == [f"azurerm_role_assignment.{assignment_id}"]
    assignment_ref = stack.ref("azurerm_role_assignment", assignment_id, "id")
    assert sleep["triggers"] == {"role_assignment_id": assignment_ref}
    assert _seconds(sleep["create_duration"]) >= MIN_PROPAGATION_SECONDS
    _, credential = stack.only("databricks_storage_credential")
    assert credential["depends_on"] == [f"time_sleep.{sleep_id}"]
    for location in stack.resources("databricks_external_location").values():
        assert location["credential_name"].startswith("${databricks_storage_credential.")
    assert stack.doc["terraform"]["required_providers"]["time"]["source"] == "hashicorp/time"


def test_the_stack_reaches_nothing_outside_its_resource_group(stack: SynthesizedStack) -> None:
    # Defect 10: each deploy identity holds roles on its own environment's resource group only, so the
    # stack neither creates the group nor touches anything at subscription scope.
    assert not stack.resources("azurerm_resource_group")
    group_id, group = next(iter(stack.doc["data"]["azurerm_resource_group"].items()))
    assert group["name"] == stack.config.resource_group_name
    group_ref = f"${{data.azurerm_resource_group.{group_id}.name}}"
    for resource_type, resources in stack.doc["resource"].items():
        for body in resources.values():
            if "resource_group_name" in body:
                assert body["resource_group_name"] == group_ref, resource_type
    for assignment in stack.resources("azurerm_role_assignment").values():
        assert re.fullmatch(r"\$\{azurerm_[a-z_]+\.[\w-]+\.(id|resource_manager_id)\}", assignment["scope"])


def _role_assignment_scopes(doc: Path) -> list[str]:
    text = doc.read_text().replace("\\\n", " ")
    commands = [line for line in text.splitlines() if "az role assignment create" in line]
    assert commands, f"{doc.name} documents no role assignment"
    return [re.search(r"--scope\s+(\S+)", command)[1] for command in commands]  # type: ignore[index]


def test_no_documented_role_is_subscription_wide() -> None:
    # Defect 10: Owner on the subscription let dev's identity reach prod's state when they shared it.
    for doc in (INFRA_DOC, DELIVERY_DOC):
        for scope in _role_assignment_scopes(doc):
            assert not re.fullmatch(r'"?/subscriptions/\$\w+"?', scope), f"{doc.name}: {scope}"
    shared_state_account = "pulsetfstate -g pulse-tfstate "  # removed: one state account per environment
    assert shared_state_account not in DELIVERY_DOC.read_text()


def test_the_secret_scope_is_a_bootstrap_object_the_stack_only_names(stack: SynthesizedStack) -> None:
    # Defect 12: only a user can create a Key Vault-backed scope, so CI could never (re)create it.
    assert not stack.resources("databricks_secret_scope")
    (acl,) = stack.resources("databricks_secret_acl").values()
    assert acl["scope"] == stack.config.secret_scope_name == f"pulse-kv-{stack.config.env}"
    doc = INFRA_DOC.read_text()
    assert "databricks secrets create-scope" in doc
    assert "python -m delivery.databricks check-scope" in doc


def _identity_table(doc: Path) -> str:
    text = doc.read_text()
    start = text.index("<!-- identities:")
    end = text.index("\n\n", start)
    return text[start:end]


def test_both_docs_show_the_same_identity_table() -> None:
    table = _identity_table(INFRA_DOC)
    assert table == _identity_table(DELIVERY_DOC)
    for identity in ("**deploy**", "**plan**", "**jobs**", "**dashboard**"):
        assert f"| {identity}" in table
    assert "environment:<env>-plan" in table
