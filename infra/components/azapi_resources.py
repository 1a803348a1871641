"""A small typed layer over the raw ``Azure/azapi`` provider (no cdktf bindings are pinned for it).

Used for one thing: writing Key Vault secrets through Azure Resource Manager
(``Microsoft.KeyVault/vaults/secrets``), a control-plane call that the vault's firewall does not filter,
so a deploy from a GitHub-hosted runner never needs the vault's data plane.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable
from constructs import Construct

from infra.components.raw_terraform import RawProvider, RawResource

PROVIDER_SOURCE = "Azure/azapi"
# 2.5 added sensitive_body_version; sensitive_body keeps the secret value out of the plan's diff.
PROVIDER_VERSION = "~> 2.5"
KEY_VAULT_SECRET_TYPE = "Microsoft.KeyVault/vaults/secrets@2023-07-01"  # noqa: S105 - an ARM type, no secret


class AzapiProvider(RawProvider):
    """The ``Azure/azapi`` provider; it authenticates like azurerm (``ARM_*`` variables, OIDC in CI)."""

    NAME = "azapi"
    SOURCE = PROVIDER_SOURCE
    VERSION = PROVIDER_VERSION


class ArmKeyVaultSecret(RawResource):
    """A Key Vault secret written through ARM: ``azapi_resource`` of ``Microsoft.KeyVault/vaults/secrets``.

    Args:
        scope: Parent construct.
        id: Construct id.
        name: Secret name.
        vault_id: Token of the vault's resource id (the ARM parent).
        value: Token of the value; sent in ``sensitive_body``, never a literal.
        value_version: Token that changes whenever the value does (the API key id), so a rotated key is
            re-sent: azapi cannot diff a sensitive body.
        expires_at: Unix time of the secret's expiry.
        content_type: The secret's content type.
        depends_on: Resources to create first.
    """

    TF_TYPE = "azapi_resource"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        vault_id: str,
        value: str,
        value_version: str,
        expires_at: int,
        content_type: str,
        depends_on: Sequence[ITerraformDependable] | None = None,
    ) -> None:
        attributes = {
            "type": KEY_VAULT_SECRET_TYPE,
            "name": name,
            "parent_id": vault_id,
            "body": {
                "properties": {
                    "contentType": content_type,
                    "attributes": {"enabled": True, "exp": expires_at},
                }
            },
            "sensitive_body": {"properties": {"value": value}},
            "sensitive_body_version": {"properties.value": value_version},
        }
        super().__init__(scope, id, attributes, depends_on=depends_on)
