"""ADLS Gen2 data lake: one hardened storage account, a container per layer, lifecycle and diagnostics."""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_azurerm.data_azurerm_resource_group import DataAzurermResourceGroup
from cdktf_cdktf_provider_azurerm.log_analytics_workspace import LogAnalyticsWorkspace
from cdktf_cdktf_provider_azurerm.monitor_diagnostic_setting import (
    MonitorDiagnosticSetting,
    MonitorDiagnosticSettingEnabledLog,
    MonitorDiagnosticSettingEnabledMetric,
)
from cdktf_cdktf_provider_azurerm.private_dns_zone import PrivateDnsZone
from cdktf_cdktf_provider_azurerm.storage_account import (
    StorageAccount,
    StorageAccountBlobProperties,
    StorageAccountBlobPropertiesContainerDeleteRetentionPolicy,
    StorageAccountBlobPropertiesDeleteRetentionPolicy,
    StorageAccountNetworkRules,
    StorageAccountNetworkRulesPrivateLinkAccess,
    StorageAccountSasPolicy,
)
from cdktf_cdktf_provider_azurerm.storage_container import StorageContainer
from cdktf_cdktf_provider_azurerm.storage_management_policy import (
    StorageManagementPolicy,
    StorageManagementPolicyRule,
    StorageManagementPolicyRuleActions,
    StorageManagementPolicyRuleActionsBaseBlob,
    StorageManagementPolicyRuleFilters,
)
from cdktf_cdktf_provider_azurerm.subnet import Subnet
from constructs import Construct

from infra.components.network import private_endpoint
from infra.config import EnvConfig
from infra.naming import ResourceKind

LAYERS = ("bronze", "silver", "gold", "checkpoints")
# Managed storage of the environment's catalog, which holds the deploy artifacts volume (never a layer).
ARTIFACTS_CONTAINER = "artifacts"
# A user-delegation SAS the dashboard mints lives at most one hour; Azure refuses a longer one ("Block").
SAS_EXPIRATION_PERIOD = "00.01:00:00"
SAS_EXPIRATION_ACTION = "Block"


class DataLake(Construct):
    """The lake's storage account and its containers.

    Attributes:
        account: The ADLS Gen2 storage account.
        containers: Containers by layer: ``bronze``, ``silver``, ``gold``, ``checkpoints``, and
            ``artifacts`` (the catalog's managed storage, for the deploy artifacts volume).
        lake_url_template: ``abfss://{layer}@<account>.dfs.core.windows.net`` with a literal ``{layer}``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvConfig,
        resource_group: DataAzurermResourceGroup,
        log_analytics: LogAnalyticsWorkspace,
        endpoints_subnet: Subnet,
        dns_zones: dict[str, PrivateDnsZone],
        trusted_resource_ids: list[str],
    ) -> None:
        super().__init__(scope, id)
        self.account = StorageAccount(
            self,
            "account",
            **config.placed(ResourceKind.STORAGE_ACCOUNT, "lake", resource_group),
            account_tier="Standard",
            account_kind="StorageV2",
            account_replication_type=config.storage_replication,
            is_hns_enabled=True,
            min_tls_version="TLS1_2",
            https_traffic_only_enabled=True,
            allow_nested_items_to_be_public=False,
            # Every client authenticates with Entra ID (Databricks' access connector, the dashboard's
            # identity, Terraform with storage_use_azuread), so account keys and local users are off.
            shared_access_key_enabled=False,
            default_to_oauth_authentication=True,
            local_user_enabled=False,
            sftp_enabled=False,
            # "Enabled from selected networks" with nothing selected but the access connector's resource
            # instance rule: Unity Catalog (validation, the Files API of the artifacts volume) reaches the
            # lake from the Databricks control plane as that identity; every other public caller is denied.
            # With public access fully disabled Azure ignores resource instance rules, and UC fails.
            public_network_access_enabled=True,
            cross_tenant_replication_enabled=False,
            infrastructure_encryption_enabled=True,
            blob_properties=StorageAccountBlobProperties(
                # Versioning and change feed are not available with a hierarchical namespace.
                delete_retention_policy=StorageAccountBlobPropertiesDeleteRetentionPolicy(
                    days=config.soft_delete_days
                ),
                container_delete_retention_policy=StorageAccountBlobPropertiesContainerDeleteRetentionPolicy(
                    days=config.soft_delete_days
                ),
            ),
            network_rules=StorageAccountNetworkRules(
                default_action="Deny",
                ip_rules=[],
                virtual_network_subnet_ids=[],
                bypass=["AzureServices", "Logging", "Metrics"],
                private_link_access=[
                    StorageAccountNetworkRulesPrivateLinkAccess(endpoint_resource_id=rid)
                    for rid in trusted_resource_ids
                ],
            ),
            sas_policy=StorageAccountSasPolicy(
                expiration_period=SAS_EXPIRATION_PERIOD, expiration_action=SAS_EXPIRATION_ACTION
            ),
            lifecycle=TerraformResourceLifecycle(prevent_destroy=config.protect_stateful),
            tags=config.all_tags,
        )
        self.containers: dict[str, StorageContainer] = {
            layer: StorageContainer(
                self,
                f"container-{layer}",
                name=layer,
                storage_account_id=self.account.id,
                container_access_type="private",
            )
            for layer in (*LAYERS, ARTIFACTS_CONTAINER)
        }
        self.lake_url_template = f"abfss://{{layer}}@{self.account.name}.dfs.core.windows.net"

        StorageManagementPolicy(
            self,
            "lifecycle",
            storage_account_id=self.account.id,
            rule=[
                # Delta still reads cool blobs, so tiering is safe; deleting files is VACUUM's job, never
                # the lifecycle's (a lifecycle delete would corrupt the Delta log).
                StorageManagementPolicyRule(
                    name="bronze-to-cool",
                    enabled=True,
                    filters=StorageManagementPolicyRuleFilters(
                        blob_types=["blockBlob"], prefix_match=["bronze/"]
                    ),
                    actions=StorageManagementPolicyRuleActions(
                        base_blob=StorageManagementPolicyRuleActionsBaseBlob(
                            tier_to_cool_after_days_since_modification_greater_than=config.bronze_cool_after_days
                        )
                    ),
                ),
            ],
        )

        for sub_resource in ("blob", "dfs"):
            private_endpoint(
                self,
                f"endpoint-{sub_resource}",
                config=config,
                resource_group=resource_group,
                subnet=endpoints_subnet,
                component=f"lake-{sub_resource}",
                target_id=self.account.id,
                sub_resource=sub_resource,
                dns_zone=dns_zones[sub_resource],
            )

        MonitorDiagnosticSetting(
            self,
            "blob-diagnostics",
            name="to-log-analytics",
            target_resource_id=f"{self.account.id}/blobServices/default",
            log_analytics_workspace_id=log_analytics.id,
            enabled_log=[
                MonitorDiagnosticSettingEnabledLog(category="StorageRead"),
                MonitorDiagnosticSettingEnabledLog(category="StorageWrite"),
                MonitorDiagnosticSettingEnabledLog(category="StorageDelete"),
            ],
            enabled_metric=[MonitorDiagnosticSettingEnabledMetric(category="Transaction")],
        )
        MonitorDiagnosticSetting(
            self,
            "account-diagnostics",
            name="to-log-analytics",
            target_resource_id=self.account.id,
            log_analytics_workspace_id=log_analytics.id,
            enabled_metric=[MonitorDiagnosticSettingEnabledMetric(category="Transaction")],
        )

    def abfss_url(self, layer: str) -> str:
        """The ``abfss://`` root of one layer's container.

        Args:
            layer: One of ``LAYERS``, or ``ARTIFACTS_CONTAINER``.

        Returns:
            ``abfss://<layer>@<account>.dfs.core.windows.net/`` as a token string.
        """
        return f"abfss://{self.containers[layer].name}@{self.account.name}.dfs.core.windows.net/"
