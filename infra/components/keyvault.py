"""Key Vault: RBAC-only, purge-protected, firewalled; holds the Kafka credentials of each workload.

Terraform writes the secrets through Azure Resource Manager (``Microsoft.KeyVault/vaults/secrets``), not
through the vault's data plane: the firewall (default Deny) filters only the data plane, so a deploy from
a GitHub-hosted runner, whose address is unknown, succeeds, and the deploy identity needs no data-plane
role (it can write a secret but never read one back).
"""

from __future__ import annotations

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_azurerm.data_azurerm_client_config import DataAzurermClientConfig
from cdktf_cdktf_provider_azurerm.data_azurerm_resource_group import DataAzurermResourceGroup
from cdktf_cdktf_provider_azurerm.key_vault import KeyVault, KeyVaultNetworkAcls
from cdktf_cdktf_provider_azurerm.private_dns_zone import PrivateDnsZone
from cdktf_cdktf_provider_azurerm.role_assignment import RoleAssignment
from cdktf_cdktf_provider_azurerm.subnet import Subnet
from constructs import Construct

from infra.components.azapi_resources import ArmKeyVaultSecret
from infra.components.network import private_endpoint
from infra.config import EnvConfig
from infra.naming import ResourceKind


class SecretVault(Construct):
    """The environment's Key Vault and the role assignment that lets Databricks read it.

    Attributes:
        key_vault: The vault.
        secrets: Secrets written so far, by Key Vault secret name.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvConfig,
        resource_group: DataAzurermResourceGroup,
        client: DataAzurermClientConfig,
        endpoints_subnet: Subnet,
        vault_dns_zone: PrivateDnsZone,
        operator_ip_ranges: list[str],
        azure_databricks_sp_object_id: str,
    ) -> None:
        super().__init__(scope, id)
        self._config = config
        self.key_vault = KeyVault(
            self,
            "vault",
            **config.placed(ResourceKind.KEY_VAULT, "kv", resource_group),
            tenant_id=client.tenant_id,
            sku_name="standard",
            rbac_authorization_enabled=True,
            purge_protection_enabled=True,
            soft_delete_retention_days=90,
            # Public access stays on only so the trusted-service bypass works: Databricks' Key Vault-backed
            # scope reads from its control plane. Everything else is denied but the operator ranges (people
            # inspecting secrets); deploys write through ARM and in-VNet consumers use the private endpoint.
            public_network_access_enabled=True,
            network_acls=KeyVaultNetworkAcls(
                default_action="Deny", bypass="AzureServices", ip_rules=operator_ip_ranges
            ),
            lifecycle=TerraformResourceLifecycle(prevent_destroy=config.protect_stateful),
            tags=config.all_tags,
        )
        private_endpoint(
            self,
            "endpoint",
            config=config,
            resource_group=resource_group,
            subnet=endpoints_subnet,
            component="kv",
            target_id=self.key_vault.id,
            sub_resource="vault",
            dns_zone=vault_dns_zone,
        )
        # The Key Vault-backed Databricks secret scope reads secrets as the AzureDatabricks first-party app.
        RoleAssignment(
            self,
            "databricks-secrets-user",
            scope=self.key_vault.id,
            role_definition_name="Key Vault Secrets User",
            principal_id=azure_databricks_sp_object_id,
            description="Databricks reads the Kafka credentials through its Key Vault-backed secret scope.",
        )
        self.secrets: dict[str, ArmKeyVaultSecret] = {}

    def store_secret(self, id: str, *, name: str, value: str, value_version: str) -> ArmKeyVaultSecret:
        """Writes a generated credential into the vault through ARM (the firewall does not apply there).

        Args:
            id: Construct id of the secret resource.
            name: Key Vault secret name.
            value: Token of the value (a resource attribute; never a literal).
            value_version: Token that changes when the value does (e.g. the API key id).

        Returns:
            The secret resource.
        """
        secret = ArmKeyVaultSecret(
            self,
            id,
            name=name,
            vault_id=self.key_vault.id,
            value=value,
            value_version=value_version,
            expires_at=int(self._config.secret_expiry.timestamp()),
            content_type="text/plain",
        )
        self.secrets[name] = secret
        return secret
