"""Confluent organization bootstrap: per environment, its Confluent environment and service accounts.

An organization admin applies this once (stack ``pulse-confluent-org``), never CI. It gives each
environment a deployer service account whose only roles are EnvironmentAdmin on that environment and
ResourceOwner on that environment's workload accounts, so a deploy of dev holds a key that cannot touch
staging's or prod's cluster, topics, accounts or keys.
"""

from __future__ import annotations

from constructs import Construct

from infra.components.confluent_resources import (
    ConfluentEnvironment,
    KafkaApiKey,
    Organization,
    RoleBinding,
    ServiceAccount,
)
from infra.config import EnvConfig
from infra.naming import ResourceKind

# The workload accounts each environment stack looks up by display name (pulse-<role>-<env>).
WORKLOAD_ACCOUNTS: dict[str, str] = {
    "kafka-admin": "Manages topics and ACLs from Terraform; no workload uses it.",
    "producer": "Writes user-interaction events to Kafka.",
    "databricks": "Reads user-interaction events into the Bronze layer.",
}
DEPLOYER_ACCOUNT = "deployer"
DEPLOYER_ROLES = ("EnvironmentAdmin", "ResourceOwner")


def environment_display_name(config: EnvConfig) -> str:
    """The Confluent environment of one Pulse environment, e.g. ``pulse-kafka-dev``."""
    return config.namer.name(ResourceKind.DISPLAY_NAME, "kafka")


def account_display_name(config: EnvConfig, role: str) -> str:
    """The service account of one role in one environment, e.g. ``pulse-producer-dev``."""
    return config.namer.name(ResourceKind.DISPLAY_NAME, role)


class ConfluentEnvironmentAccess(Construct):
    """One Pulse environment's Confluent environment, its accounts and its deployer's scoped Cloud key.

    Attributes:
        environment: The Confluent environment.
        deployer: The service account the environment's deploys authenticate as.
        deployer_key: Its Cloud API key: the ``confluent_cloud_api_key``/``_secret`` of that environment.
        bindings: The deployer's role bindings.
    """

    def __init__(self, scope: Construct, id: str, *, config: EnvConfig, organization: Organization) -> None:
        super().__init__(scope, id)
        env = config.env
        self.environment = ConfluentEnvironment(
            self,
            "environment",
            display_name=environment_display_name(config),
            prevent_destroy=config.protect_stateful,
        )
        self.deployer = ServiceAccount(
            self,
            "deployer",
            display_name=account_display_name(config, DEPLOYER_ACCOUNT),
            description=f"Deploys the pulse-{env} stack; EnvironmentAdmin of its environment only.",
        )
        self.bindings = [
            RoleBinding(
                self,
                "deployer-environment-admin",
                principal=self.deployer.principal,
                role_name="EnvironmentAdmin",
                crn_pattern=self.environment.crn,
            )
        ]
        for role, description in WORKLOAD_ACCOUNTS.items():
            account = ServiceAccount(
                self,
                f"{role}-account",
                display_name=account_display_name(config, role),
                description=description,
            )
            # ResourceOwner on the account lets the deployer mint (and rotate) its Kafka API keys.
            self.bindings.append(
                RoleBinding(
                    self,
                    f"deployer-owns-{role}",
                    principal=self.deployer.principal,
                    role_name="ResourceOwner",
                    crn_pattern=f"{organization.crn}/service-account={account.resource_id}",
                )
            )
        self.deployer_key = KafkaApiKey(
            self,
            "deployer-key",
            display_name=account_display_name(config, "deployer-key"),
            description=f"Cloud API key of the pulse-{env} deploys (GitHub environment {env}).",
            owner=self.deployer,
            cluster=None,
            depends_on=self.bindings,
        )
