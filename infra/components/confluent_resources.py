"""A small typed layer over the raw Confluent Terraform provider, which has no prebuilt cdktf bindings
(the blocks are ``infra.components.raw_terraform``'s)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from constructs import Construct

from infra.components.raw_terraform import RawDataSource, RawProvider, RawResource, TokenAttribute

PROVIDER_SOURCE = "confluentinc/confluent"
PROVIDER_VERSION = "~> 2.12"

AclOperation = Literal["READ", "WRITE", "DESCRIBE", "CREATE", "DELETE", "ALTER", "DESCRIBE_CONFIGS"]
AclResourceType = Literal["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"]
AclPatternType = Literal["LITERAL", "PREFIXED"]


class ConfluentProvider(RawProvider):
    """The ``confluentinc/confluent`` provider, authenticated with a Confluent Cloud API key.

    Args:
        scope: Parent construct.
        id: Construct id.
        cloud_api_key: Cloud API key (a token of a sensitive variable, never a literal).
        cloud_api_secret: Cloud API secret (a token of a sensitive variable, never a literal).
    """

    NAME = "confluent"
    SOURCE = PROVIDER_SOURCE
    VERSION = PROVIDER_VERSION

    def __init__(self, scope: Construct, id: str, *, cloud_api_key: str, cloud_api_secret: str) -> None:
        super().__init__(scope, id, {"cloud_api_key": cloud_api_key, "cloud_api_secret": cloud_api_secret})


class ConfluentResource(RawResource):
    """Base of the raw Confluent resources: holds the attributes and synthesizes them verbatim."""

    resource_id = TokenAttribute("id", "Token of the resource's Confluent id.")


class ConfluentObject(Protocol):
    """A Confluent resource or data source: what API keys, clusters and role bindings refer to."""

    @property
    def resource_id(self) -> str: ...

    def get_string_attribute(self, terraform_attribute: str) -> str: ...


class ConfluentDataSource(RawDataSource):
    """Base of the raw Confluent data sources: looks an existing object up by its attributes."""

    resource_id = TokenAttribute("id", "Token of the object's Confluent id.")
    crn = TokenAttribute(
        "resource_name", "Token of the object's CRN (``resource_name``), the scope of role bindings on it."
    )


class ExistingEnvironment(ConfluentDataSource):
    """A Confluent environment created by the organization bootstrap, found by its display name."""

    TF_TYPE = "confluent_environment"

    def __init__(self, scope: Construct, id: str, *, display_name: str) -> None:
        super().__init__(scope, id, {"display_name": display_name})


class ExistingServiceAccount(ConfluentDataSource):
    """A service account created by the organization bootstrap, found by its display name."""

    TF_TYPE = "confluent_service_account"

    def __init__(self, scope: Construct, id: str, *, display_name: str) -> None:
        super().__init__(scope, id, {"display_name": display_name})

    @property
    def principal(self) -> str:
        """The ACL principal, ``User:<service account id>``."""
        return f"User:{self.resource_id}"


class Organization(ConfluentDataSource):
    """The Confluent organization the Cloud API key belongs to."""

    TF_TYPE = "confluent_organization"

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id, {})


class ConfluentEnvironment(ConfluentResource):
    """A Confluent Cloud environment with the Essentials stream-governance package."""

    TF_TYPE = "confluent_environment"

    def __init__(self, scope: Construct, id: str, *, display_name: str, prevent_destroy: bool) -> None:
        super().__init__(
            scope,
            id,
            {"display_name": display_name, "stream_governance": {"package": "ESSENTIALS"}},
            lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy),
        )

    crn = TokenAttribute(
        "resource_name", "Token of the environment's CRN, the scope of environment-level role bindings."
    )


class KafkaCluster(ConfluentResource):
    """A Kafka cluster on Azure; the cluster type block (``basic``/``standard``) is chosen by config."""

    TF_TYPE = "confluent_kafka_cluster"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        display_name: str,
        cluster_type: Literal["basic", "standard"],
        availability: Literal["SINGLE_ZONE", "MULTI_ZONE"],
        region: str,
        environment: ConfluentObject,
        prevent_destroy: bool,
    ) -> None:
        super().__init__(
            scope,
            id,
            {
                "display_name": display_name,
                "availability": availability,
                "cloud": "AZURE",
                "region": region,
                cluster_type: [{}],
                "environment": {"id": environment.resource_id},
            },
            lifecycle=TerraformResourceLifecycle(prevent_destroy=prevent_destroy),
        )
        self.environment = environment

    bootstrap_endpoint = TokenAttribute("bootstrap_endpoint", "Token of ``SASL_SSL://host:9092``.")

    rest_endpoint = TokenAttribute(
        "rest_endpoint", "Token of the cluster's REST endpoint (used for topics and ACLs)."
    )

    rbac_crn = TokenAttribute(
        "rbac_crn", "Token of the cluster's CRN, the scope of cluster-level role bindings."
    )

    api_version = TokenAttribute(
        "api_version", "Token of the cluster's API version, needed by API keys it manages."
    )

    kind = TokenAttribute("kind", "Token of the cluster's kind, needed by API keys it manages.")


class ServiceAccount(ConfluentResource):
    """A Confluent service account: one identity per workload."""

    TF_TYPE = "confluent_service_account"

    def __init__(self, scope: Construct, id: str, *, display_name: str, description: str) -> None:
        super().__init__(scope, id, {"display_name": display_name, "description": description})

    @property
    def principal(self) -> str:
        """The ACL principal, ``User:<service account id>``."""
        return f"User:{self.resource_id}"


class RoleBinding(ConfluentResource):
    """A Confluent RBAC role binding."""

    TF_TYPE = "confluent_role_binding"

    def __init__(
        self, scope: Construct, id: str, *, principal: str, role_name: str, crn_pattern: str
    ) -> None:
        super().__init__(
            scope, id, {"principal": principal, "role_name": role_name, "crn_pattern": crn_pattern}
        )


class KafkaApiKey(ConfluentResource):
    """An API key owned by a service account: a Kafka key scoped to one cluster, or a Cloud key."""

    TF_TYPE = "confluent_api_key"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        display_name: str,
        description: str,
        owner: ConfluentObject,
        cluster: KafkaCluster | None,
        depends_on: Sequence[ITerraformDependable] | None = None,
    ) -> None:
        attributes: dict[str, Any] = {
            "display_name": display_name,
            "description": description,
            "owner": {
                "id": owner.resource_id,
                "api_version": owner.get_string_attribute("api_version"),
                "kind": owner.get_string_attribute("kind"),
            },
        }
        if cluster is not None:  # without a managed resource the key is a Cloud (resource management) key
            attributes["managed_resource"] = {
                "id": cluster.resource_id,
                "api_version": cluster.api_version,
                "kind": cluster.kind,
                "environment": {"id": cluster.environment.resource_id},
            }
        super().__init__(scope, id, attributes, depends_on=depends_on)

    secret = TokenAttribute(
        "secret", "Token of the key's secret (sensitive in state; only ever passed by reference)."
    )

    def credentials(self) -> dict[str, str]:
        """The ``credentials`` block that topic and ACL resources authenticate with."""
        return {"key": self.resource_id, "secret": self.secret}


class KafkaTopic(ConfluentResource):
    """A Kafka topic with its partitions, retention and cleanup policy."""

    TF_TYPE = "confluent_kafka_topic"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: KafkaCluster,
        topic_name: str,
        partitions_count: int,
        config: Mapping[str, str],
        admin_key: KafkaApiKey,
    ) -> None:
        super().__init__(
            scope,
            id,
            {
                "kafka_cluster": {"id": cluster.resource_id},
                "topic_name": topic_name,
                "partitions_count": partitions_count,
                "rest_endpoint": cluster.rest_endpoint,
                "config": dict(config),
                "credentials": admin_key.credentials(),
            },
        )
        self.topic_name = topic_name


class KafkaAcl(ConfluentResource):
    """One ALLOW ACL entry for a service account."""

    TF_TYPE = "confluent_kafka_acl"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: KafkaCluster,
        resource_type: AclResourceType,
        resource_name: str,
        pattern_type: AclPatternType,
        principal: str,
        operation: AclOperation,
        admin_key: KafkaApiKey,
    ) -> None:
        super().__init__(
            scope,
            id,
            {
                "kafka_cluster": {"id": cluster.resource_id},
                "resource_type": resource_type,
                "resource_name": resource_name,
                "pattern_type": pattern_type,
                "principal": principal,
                "host": "*",
                "operation": operation,
                "permission": "ALLOW",
                "rest_endpoint": cluster.rest_endpoint,
                "credentials": admin_key.credentials(),
            },
        )
