"""``ConfluentOrgStack``: the organization-level Confluent bootstrap, applied once by an organization admin.

It is the only stack that holds an OrganizationAdmin key, and it keeps its own state, apart from every
environment's. Its outputs are each environment's scoped deployer key, to store in that environment's
GitHub secrets (``CONFLUENT_CLOUD_API_KEY``/``_SECRET``).
"""

from __future__ import annotations

from cdktf import AzurermBackend, TerraformOutput, TerraformStack, TerraformVariable
from constructs import Construct

from infra.components.confluent_org import ConfluentEnvironmentAccess
from infra.components.confluent_resources import ConfluentProvider, Organization
from infra.config import ORG_STACK_NAME, ORG_STATE, EnvConfig


class ConfluentOrgStack(TerraformStack):
    """Confluent environments, service accounts and scoped deployer keys of every Pulse environment.

    Args:
        scope: The cdktf app.
        environments: The Pulse environments to bootstrap.
    """

    def __init__(self, scope: Construct, environments: list[EnvConfig]) -> None:
        super().__init__(scope, ORG_STACK_NAME)
        AzurermBackend(
            self,
            resource_group_name=ORG_STATE.resource_group_name,
            storage_account_name=ORG_STATE.storage_account_name,
            container_name=ORG_STATE.container_name,
            key=ORG_STATE.key,
            use_azuread_auth=True,
        )
        credentials = {
            name: TerraformVariable(
                self,
                name,
                type="string",
                sensitive=True,
                nullable=False,
                description=f"Confluent Cloud API {part} of an OrganizationAdmin (org admins only, not CI).",
            ).string_value
            for name, part in (
                ("confluent_org_admin_api_key", "key"),
                ("confluent_org_admin_api_secret", "secret"),
            )
        }
        ConfluentProvider(
            self,
            "confluent",
            cloud_api_key=credentials["confluent_org_admin_api_key"],
            cloud_api_secret=credentials["confluent_org_admin_api_secret"],
        )
        organization = Organization(self, "organization")
        self.access: dict[str, ConfluentEnvironmentAccess] = {}
        for config in environments:
            access = ConfluentEnvironmentAccess(
                self, f"env-{config.env}", config=config, organization=organization
            )
            self.access[config.env] = access
            key = access.deployer_key
            for output, value in (("api_key", key.resource_id), ("api_secret", key.secret)):
                TerraformOutput(
                    self,
                    f"{config.env}_deployer_{output}",
                    value=value,
                    sensitive=True,
                    description=f"CONFLUENT_CLOUD_{output.upper()} of the GitHub environment {config.env}.",
                )
