"""``PulseStack``: the whole Pulse platform for one environment, instantiated once per ``EnvConfig``."""

from __future__ import annotations

from cdktf import AzurermBackend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_azurerm.data_azurerm_client_config import DataAzurermClientConfig
from cdktf_cdktf_provider_azurerm.data_azurerm_resource_group import DataAzurermResourceGroup
from cdktf_cdktf_provider_azurerm.provider import (
    AzurermProvider,
    AzurermProviderFeatures,
    AzurermProviderFeaturesKeyVault,
    AzurermProviderFeaturesResourceGroup,
    AzurermProviderFeaturesStorage,
)
from constructs import Construct

from infra.components.azapi_resources import AzapiProvider
from infra.components.confluent import ConfluentKafka
from infra.components.confluent_resources import ConfluentProvider
from infra.components.dashboard import Dashboard
from infra.components.databricks import DatabricksPipeline, DatabricksWorkspace
from infra.components.datalake import DataLake
from infra.components.keyvault import SecretVault
from infra.components.monitoring import Monitoring
from infra.components.network import Network
from infra.components.time_resources import TimeProvider
from infra.config import EnvConfig
from infra.variables import StackInputs

# Every Azure resource provider namespace the stack's resources belong to. The azurerm provider registers
# none (resource_provider_registrations = "none"); the bootstrap registers these (docs/infra.md), and
# Microsoft.App is one the provider's "legacy" default set never registered (azurerm #29525).
REQUIRED_RESOURCE_PROVIDERS = (
    "Microsoft.App",
    "Microsoft.Databricks",
    "Microsoft.Insights",
    "Microsoft.KeyVault",
    "Microsoft.Network",
    "Microsoft.OperationalInsights",
    "Microsoft.Storage",
)

OUTPUT_NAMES = (
    "dashboard_url",
    "storage_account_name",
    "databricks_workspace_url",
    "kafka_bootstrap_endpoint",
)


class PulseStack(TerraformStack):
    """Confluent Kafka, the ADLS lake, Key Vault, Databricks and the dashboard for one environment.

    Args:
        scope: The cdktf app.
        config: The environment; its ``stack_name`` names the stack.
    """

    def __init__(self, scope: Construct, config: EnvConfig) -> None:
        super().__init__(scope, config.stack_name)
        self.config = config
        AzurermBackend(
            self,
            resource_group_name=config.state.resource_group_name,
            storage_account_name=config.state.storage_account_name,
            container_name=config.state.container_name,
            key=config.state.key,
            use_azuread_auth=True,
        )
        AzurermProvider(
            self,
            "azurerm",
            # The lake has shared-key access off, so the provider's data-plane calls use Entra ID.
            storage_use_azuread=True,
            # Registering resource providers is a subscription-wide action the deploy identity does not
            # hold: the bootstrap registers REQUIRED_RESOURCE_PROVIDERS once per subscription instead.
            resource_provider_registrations="none",
            features=[
                AzurermProviderFeatures(
                    key_vault=[AzurermProviderFeaturesKeyVault(purge_soft_delete_on_destroy=False)],
                    resource_group=[
                        AzurermProviderFeaturesResourceGroup(prevent_deletion_if_contains_resources=True)
                    ],
                    # The lake's firewall denies the runner, so the provider must not call the blob/dfs
                    # data plane (containers go through ARM via storage_account_id).
                    storage=[AzurermProviderFeaturesStorage(data_plane_available=False)],
                )
            ],
        )
        AzapiProvider(self, "azapi")
        TimeProvider(self, "time")
        inputs = StackInputs(
            self,
            wheels_dir=config.artifacts.wheels_dir,
            dashboard=config.dashboard,
            engine_jar=config.databricks.engine == "keyed",
        )
        ConfluentProvider(
            self,
            "confluent",
            cloud_api_key=inputs.confluent_cloud_api_key,
            cloud_api_secret=inputs.confluent_cloud_api_secret,
        )
        client = DataAzurermClientConfig(self, "client")
        # Made at bootstrap with the deploy identity's role assignments on it (docs/infra.md): the deploy
        # identity holds no subscription-wide role, so it could not create (or delete) the group itself.
        resource_group = DataAzurermResourceGroup(self, "resource-group", name=config.resource_group_name)

        monitoring = Monitoring(self, "monitoring", config=config, resource_group=resource_group)
        network = Network(self, "network", config=config, resource_group=resource_group)
        workspace = DatabricksWorkspace(
            self, "databricks-workspace", config=config, resource_group=resource_group, network=network
        )
        self.lake = DataLake(
            self,
            "datalake",
            config=config,
            resource_group=resource_group,
            log_analytics=monitoring.workspace,
            endpoints_subnet=network.subnets["endpoints"],
            dns_zones=network.dns_zones,
            trusted_resource_ids=[workspace.access_connector.id],
        )
        vault = SecretVault(
            self,
            "keyvault",
            config=config,
            resource_group=resource_group,
            client=client,
            endpoints_subnet=network.subnets["endpoints"],
            vault_dns_zone=network.dns_zones["vault"],
            operator_ip_ranges=inputs.operator_ip_ranges,
            azure_databricks_sp_object_id=inputs.azure_databricks_sp_object_id,
        )
        kafka = ConfluentKafka(self, "confluent-kafka", config=config, vault=vault)
        DatabricksPipeline(
            self,
            "databricks-pipeline",
            config=config,
            workspace=workspace,
            lake=self.lake,
            kafka=kafka,
            wheel_uri=inputs.pulse_wheel_uri,
            engine_jar_uri=inputs.pulse_engine_jar_uri,
            alert_emails=inputs.alert_emails,
            deployer_application_id=inputs.deployer_application_id,
            databricks_account_id=inputs.databricks_account_id,
        )
        dashboard = Dashboard(
            self,
            "dashboard",
            config=config,
            resource_group=resource_group,
            log_analytics=monitoring.workspace,
            apps_subnet=network.subnets["apps"],
            lake=self.lake,
            image=inputs.dashboard_image,
            # The tenant the deploy signs in to is the organisation's: its users are the ones admitted.
            tenant_id=client.tenant_id,
            sign_in=inputs.dashboard_sign_in,
        )

        dashboard_access = "public, no sign-in" if config.dashboard.public else "behind Entra ID sign-in"
        outputs = {
            "dashboard_url": (dashboard.url, f"HTTPS URL of the dashboard ({dashboard_access})."),
            "storage_account_name": (self.lake.account.name, "The lake's ADLS Gen2 storage account."),
            "databricks_workspace_url": (workspace.url, "URL of the Databricks workspace."),
            "kafka_bootstrap_endpoint": (kafka.bootstrap_servers, "Confluent Kafka bootstrap servers."),
        }
        for name in OUTPUT_NAMES:
            value, description = outputs[name]
            TerraformOutput(self, name, value=value, description=description)
