"""A small typed layer over the raw ``Azure/azapi`` provider (no cdktf bindings are pinned for it).

Used for two things azurerm does not offer:

* writing Key Vault secrets through Azure Resource Manager (``Microsoft.KeyVault/vaults/secrets``), a
  control-plane call that the vault's firewall does not filter, so a deploy from a GitHub-hosted runner
  never needs the vault's data plane;
* a Container App's built-in authentication (``Microsoft.App/containerApps/authConfigs``), which
  ``azurerm_container_app`` has no block for.
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
CONTAINER_APP_AUTH_CONFIG_TYPE = "Microsoft.App/containerApps/authConfigs@2024-03-01"
# The only name Container Apps accepts for an app's auth config.
AUTH_CONFIG_NAME = "current"
ENTRA_LOGIN_HOST = "https://login.microsoftonline.com"


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


class ContainerAppEntraSignIn(RawResource):
    """Built-in authentication of a Container App that admits only signed-in users of one Entra ID tenant:
    ``azapi_resource`` of ``Microsoft.App/containerApps/authConfigs``.

    An unauthenticated request is redirected to the tenant's sign-in page (a client that is not a browser
    gets a 401), and never reaches the app, except on ``excluded_paths``.

    Args:
        scope: Parent construct.
        id: Construct id.
        app_id: Token of the Container App's resource id (the ARM parent).
        tenant_id: Token of the tenant whose users may sign in; the OpenID issuer names it.
        client_id: Token of the app registration users sign in to.
        client_secret_setting: Name of the Container App secret that holds the registration's secret.
        excluded_paths: Paths served without sign-in (the health probe's).
        viewer_group_id: Token of the only Entra ID group admitted, or None for the whole tenant.
    """

    TF_TYPE = "azapi_resource"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        app_id: str,
        tenant_id: str,
        client_id: str,
        client_secret_setting: str,
        excluded_paths: Sequence[str],
        viewer_group_id: str | None,
    ) -> None:
        entra: dict[str, object] = {
            "enabled": True,
            "registration": {
                "clientId": client_id,
                "clientSecretSettingName": client_secret_setting,
                "openIdIssuer": f"{ENTRA_LOGIN_HOST}/{tenant_id}/v2.0",
            },
        }
        if viewer_group_id is not None:
            # Checked against the token's groups claim (the registration emits it: docs/infra.md).
            entra["validation"] = {
                "defaultAuthorizationPolicy": {"allowedPrincipals": {"groups": [viewer_group_id]}}
            }
        attributes = {
            "type": CONTAINER_APP_AUTH_CONFIG_TYPE,
            "name": AUTH_CONFIG_NAME,
            "parent_id": app_id,
            "body": {
                "properties": {
                    "platform": {"enabled": True},
                    "globalValidation": {
                        "unauthenticatedClientAction": "RedirectToLoginPage",
                        "redirectToProvider": "azureactivedirectory",
                        "excludedPaths": list(excluded_paths),
                    },
                    "httpSettings": {"requireHttps": True},
                    "identityProviders": {"azureActiveDirectory": entra},
                }
            },
        }
        super().__init__(scope, id, attributes)
