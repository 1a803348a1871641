"""Confluent Cloud: Kafka cluster, the events topic, per-workload API keys and ACLs.

The Confluent environment and the service accounts are organization-level objects, created by the
organization bootstrap (``infra/components/confluent_org.py``); this stack only looks them up, so its
deployer key needs no more than EnvironmentAdmin on its own environment. The Terraform run uses a
cluster-admin service account (``kafka-admin``) to manage topics and ACLs; the producer and Databricks
accounts get only the ACLs they need, and their keys go to Key Vault.
"""

from __future__ import annotations

from typing import NamedTuple

from cdktf import Fn
from constructs import Construct

from infra.components.confluent_org import account_display_name, environment_display_name
from infra.components.confluent_resources import (
    AclOperation,
    AclPatternType,
    AclResourceType,
    ExistingEnvironment,
    ExistingServiceAccount,
    KafkaAcl,
    KafkaApiKey,
    KafkaCluster,
    KafkaTopic,
    RoleBinding,
)
from infra.components.keyvault import SecretVault
from infra.config import EnvConfig
from infra.naming import ResourceKind

TOPIC_NAME = "user-interactions"
CONSUMER_GROUP_PREFIX = "pulse-pipeline"


class AclGrant(NamedTuple):
    """One least-privilege permission of a workload's service account."""

    role: str
    resource_type: AclResourceType
    resource_name: str
    pattern_type: AclPatternType
    operation: AclOperation


ACL_GRANTS: tuple[AclGrant, ...] = (
    AclGrant("producer", "TOPIC", TOPIC_NAME, "LITERAL", "WRITE"),
    AclGrant("producer", "TOPIC", TOPIC_NAME, "LITERAL", "DESCRIBE"),
    AclGrant("databricks", "TOPIC", TOPIC_NAME, "LITERAL", "READ"),
    AclGrant("databricks", "GROUP", CONSUMER_GROUP_PREFIX, "PREFIXED", "READ"),
)


class ConfluentKafka(Construct):
    """Kafka on Confluent Cloud for one environment.

    Attributes:
        cluster: The Kafka cluster.
        topic: The ``user-interactions`` topic.
        bootstrap_servers: Token of ``host:port`` without the ``SASL_SSL://`` scheme.
        service_accounts: The producer and Databricks service accounts, by role.
        api_keys: Their API keys, by role.
        secret_names: Key Vault secret names holding each role's key and secret.
    """

    def __init__(self, scope: Construct, id: str, *, config: EnvConfig, vault: SecretVault) -> None:
        super().__init__(scope, id)
        namer = config.namer
        kafka = config.kafka

        environment = ExistingEnvironment(self, "environment", display_name=environment_display_name(config))
        self.cluster = KafkaCluster(
            self,
            "cluster",
            display_name=namer.name(ResourceKind.DISPLAY_NAME, "events"),
            cluster_type=kafka.cluster_type,
            availability=kafka.availability,
            region=kafka.cloud_region,
            environment=environment,
            prevent_destroy=config.protect_stateful,
        )
        self.bootstrap_servers = Fn.replace(self.cluster.bootstrap_endpoint, "SASL_SSL://", "")

        admin = ExistingServiceAccount(
            self, "admin", display_name=account_display_name(config, "kafka-admin")
        )
        admin_binding = RoleBinding(
            self,
            "admin-binding",
            principal=admin.principal,
            role_name="CloudClusterAdmin",
            crn_pattern=self.cluster.rbac_crn,
        )
        admin_key = KafkaApiKey(
            self,
            "admin-key",
            display_name=namer.name(ResourceKind.DISPLAY_NAME, "kafka-admin-key"),
            description="Terraform's key for topic and ACL management.",
            owner=admin,
            cluster=self.cluster,
            depends_on=[admin_binding],
        )

        self.topic = KafkaTopic(
            self,
            "topic",
            cluster=self.cluster,
            topic_name=TOPIC_NAME,
            partitions_count=kafka.partitions,
            config={"cleanup.policy": kafka.cleanup_policy, "retention.ms": str(kafka.retention_ms)},
            admin_key=admin_key,
        )

        self.service_accounts: dict[str, ExistingServiceAccount] = {}
        self.api_keys: dict[str, KafkaApiKey] = {}
        self.secret_names: dict[str, tuple[str, str]] = {}
        for role in ("producer", "databricks"):
            account = ExistingServiceAccount(
                self, f"{role}-account", display_name=account_display_name(config, role)
            )
            key = KafkaApiKey(
                self,
                f"{role}-key",
                display_name=namer.name(ResourceKind.DISPLAY_NAME, f"{role}-key"),
                description=f"Kafka API key of the {role} service account.",
                owner=account,
                cluster=self.cluster,
            )
            key_name, secret_name = f"kafka-{role}-api-key", f"kafka-{role}-api-secret"
            vault.store_secret(
                f"{role}-key-secret", name=key_name, value=key.resource_id, value_version=key.resource_id
            )
            vault.store_secret(
                f"{role}-secret-secret", name=secret_name, value=key.secret, value_version=key.resource_id
            )
            self.service_accounts[role] = account
            self.api_keys[role] = key
            self.secret_names[role] = (key_name, secret_name)

        for grant in ACL_GRANTS:
            KafkaAcl(
                self,
                f"acl-{grant.role}-{grant.resource_type}-{grant.operation}".lower(),
                cluster=self.cluster,
                resource_type=grant.resource_type,
                resource_name=grant.resource_name,
                pattern_type=grant.pattern_type,
                principal=self.service_accounts[grant.role].principal,
                operation=grant.operation,
                admin_key=admin_key,
            )
