"""Typed per-environment configuration: one ``EnvConfig`` per stack, picked by the environment name.

Secrets never live here. Credentials arrive as sensitive Terraform variables (see ``infra.variables``).
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Network
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from infra.naming import Namer, ResourceKind

EnvName = Literal["dev", "staging", "prod"]
PipelineMode = Literal["continuous", "scheduled"]
PIPELINE_MODES: tuple[PipelineMode, ...] = ("continuous", "scheduled")
# Dev runs the layers on a cron (a cluster only while a batch runs); staging and prod stream continuously.
DEFAULT_PIPELINE_MODE: dict[str, PipelineMode] = {
    "dev": "scheduled",
    "staging": "continuous",
    "prod": "continuous",
}
# What commits the jobs' Gold MERGEs and appends (`PULSE_GOLD_WRITER`): delta-rs from the driver, with a
# Unity Catalog service credential's token (docs/pipeline.md, "Who commits Gold"), the path `make bench`
# measures; Spark's commits cost a cloud batch 36 Spark jobs. The jobs' environment sets it from here, and
# the e2e exactness test (tests/e2e/test_gold_exactness.py) runs the pipeline with it.
DATABRICKS_GOLD_WRITER: Literal["auto", "delta-rs", "spark"] = "delta-rs"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaConfig(_Frozen):
    """Confluent Cloud sizing.

    Attributes:
        cluster_type: ``basic`` (cheap, single zone) or ``standard`` (multi-zone, SLA).
        availability: Confluent availability: ``SINGLE_ZONE`` or ``MULTI_ZONE``.
        cloud_region: Azure region name as Confluent spells it.
        partitions: Partitions of the ``user-interactions`` topic.
        retention_ms: How long the topic keeps events.
        cleanup_policy: Kafka ``cleanup.policy``; events are a log, so ``delete``.
    """

    cluster_type: Literal["basic", "standard"]
    availability: Literal["SINGLE_ZONE", "MULTI_ZONE"]
    cloud_region: str
    partitions: PositiveInt
    retention_ms: PositiveInt
    cleanup_policy: Literal["delete", "compact"] = "delete"

    @model_validator(mode="after")
    def _basic_is_single_zone(self) -> KafkaConfig:
        if self.cluster_type == "basic" and self.availability != "SINGLE_ZONE":
            raise ValueError("Confluent basic clusters are single-zone only")
        return self


class DatabricksConfig(_Frozen):
    """Databricks compute and schedules.

    Attributes:
        spark_version: Databricks runtime; 17.x ships Spark 4, matching the wheel's pyspark.
        node_type: Azure VM size of driver and workers.
        min_workers: Autoscale lower bound of the streaming cluster.
        max_workers: Autoscale upper bound of the streaming cluster.
        maintenance_cron: Quartz cron of the OPTIMIZE/VACUUM job (UTC).
        maintenance_paused: Whether the maintenance schedule is paused.
        pipeline_paused: Whether the pipeline job (continuous, or its schedule) is paused.
        pipeline_mode: ``continuous`` (one long-running stream) or ``scheduled`` (the layers with
            ``--once`` on ``pipeline_cron``); None takes the environment's default
            (``DEFAULT_PIPELINE_MODE``: scheduled in dev, continuous in staging and prod).
        pipeline_cron: Quartz cron (UTC) of the scheduled mode; ignored by the continuous mode.
        engine: Where ``pulse pipeline all`` computes Gold (``PULSE_ENGINE``): ``driver`` (pandas on the
            driver) or ``keyed`` (the JVM operator in Spark tasks, which more workers scale; docs/scale.md).
            ``keyed`` runs only in the continuous mode (the scheduled mode's refine job is the driver
            engine's), and its tasks get the operator's jar, built once with the wheel. Switching an
            environment's engine is a plain deploy: the pipeline moves the other engine's checkpoint aside
            and starts after what Bronze holds.
        state_partitions: The keyed engine's state partitions (``PULSE_STATE_PARTITIONS``), fixed in the
            checkpoint at its first run: size them for ``max_workers``' cores. A deploy that changes them
            rebuilds the keyed state from the lake in the new count. None: the cluster's
            ``spark.sql.shuffle.partitions``.
    """

    spark_version: str = "17.3.x-scala2.13"
    node_type: str
    min_workers: PositiveInt
    max_workers: PositiveInt
    maintenance_cron: str = "0 0 3 * * ?"
    maintenance_paused: bool
    pipeline_paused: bool
    pipeline_mode: PipelineMode | None = None
    pipeline_cron: str = "0 0 * * * ?"
    engine: Literal["driver", "keyed"] = "driver"
    state_partitions: PositiveInt | None = None

    @field_validator("pipeline_mode", mode="before")
    @classmethod
    def _known_mode(cls, value: object) -> object:
        if value is not None and value not in PIPELINE_MODES:
            raise ValueError(f"pipeline_mode must be one of {', '.join(PIPELINE_MODES)}; got {value!r}")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> DatabricksConfig:
        if self.min_workers > self.max_workers:
            raise ValueError("min_workers must not exceed max_workers")
        if self.state_partitions is not None and self.engine != "keyed":
            raise ValueError("state_partitions sizes the keyed engine's state: set engine='keyed' or drop it")
        return self


class DashboardConfig(_Frozen):
    """Container App sizing, and who may open the hosted dashboard (docs/infra.md, "Who can open the
    dashboard").

    Attributes:
        cpu: vCPU per replica (Container Apps allows 0.25 steps).
        memory: Memory per replica, ``2 x cpu`` Gi as Container Apps requires.
        min_replicas: Replicas kept warm.
        max_replicas: Scale-out ceiling.
        viewer_group: Admit only the members of one Entra ID group (the deploy names it in
            ``dashboard_viewer_group_id``) instead of every user of the organisation's tenant.
        public: Serve the dashboard to anyone who has its URL, with no sign-in. Only dev may, and only by
            saying so here (``EnvConfig`` refuses it elsewhere); the Terraform plan then warns.
    """

    cpu: float = Field(gt=0, le=4)
    memory: str
    min_replicas: int = Field(ge=0, le=300)
    max_replicas: int = Field(ge=1, le=300)
    viewer_group: bool = False
    public: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> DashboardConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        if self.public and self.viewer_group:
            raise ValueError("a public dashboard has no sign-in, so it cannot admit only a viewer group")
        return self

    @property
    def sign_in(self) -> bool:
        """Whether the hosted dashboard admits only users who signed in with Entra ID."""
        return not self.public


class ArtifactVolume(_Frozen):
    """The Unity Catalog volume holding what the jobs run: the wheel, the deploy record, deploy scripts.

    Only the deploying identity may write it (WRITE_VOLUME); the jobs' service principal may only read it.

    Attributes:
        catalog: The environment's catalog, e.g. ``pulse_dev``.
        schema_name: Schema of the deploy artifacts.
        volume: The managed volume.
    """

    catalog: str
    schema_name: str = "deploy"
    volume: str = "artifacts"

    @property
    def root(self) -> str:
        """``/Volumes/<catalog>/<schema>/<volume>``: what a cluster and the Files API address."""
        return f"/Volumes/{self.catalog}/{self.schema_name}/{self.volume}"

    @property
    def wheels_dir(self) -> str:
        """Per-commit wheel folders go here: ``<wheels_dir>/<commit>/pulse-<version>-py3-none-any.whl``."""
        return f"{self.root}/wheels"

    @property
    def deploy_record(self) -> str:
        """The environment's deploy record (state versions of the last deploy)."""
        return f"{self.root}/deploy/deploy-record.json"


class StateBackendConfig(_Frozen):
    """Where Terraform keeps this environment's state (created once, before the first deploy).

    Attributes:
        resource_group_name: Resource group of the state storage account.
        storage_account_name: The state storage account.
        container_name: Blob container holding the state files.
        key: The state blob: one per environment.
    """

    resource_group_name: str
    storage_account_name: str
    container_name: str = "tfstate"
    key: str


class EnvConfig(_Frozen):
    """Everything that differs between dev, staging and prod.

    Attributes:
        env: Environment name; also the stack name's suffix.
        prefix: Name prefix of every resource.
        name_seed: Seed of the global-uniqueness suffix; change it if a global name is taken.
        region: Azure region.
        tags: Tags on every Azure resource.
        vnet_cidr: Address space of the environment's VNet; ``infra.components.network`` carves it.
        storage_replication: Replication of the lake's storage account; always geo-redundant, so a
            regional outage loses no Bronze history (Kafka only keeps days).
        soft_delete_days: Blob and container soft-delete retention.
        log_retention_days: Log Analytics retention.
        bronze_cool_after_days: Bronze blobs move to the cool tier after this many days.
        secret_expiry: Expiry written on the Kafka credentials in Key Vault; rotate the keys before it.
        kafka: Confluent sizing.
        databricks: Databricks sizing and schedules.
        dashboard: Container App sizing and who may open the dashboard.
        state: Terraform state backend.
        protect_stateful: Whether Terraform refuses to destroy the stateful resources (Kafka cluster, lake,
            Key Vault) via ``lifecycle.prevent_destroy``: their loss is unrecoverable (events, Bronze
            history, a purge-protected vault name blocked for 90 days).
    """

    env: EnvName
    prefix: str = "pulse"
    name_seed: str = "pulse-analytics"
    region: str = "westeurope"
    tags: dict[str, str] = Field(default_factory=dict)
    vnet_cidr: IPv4Network
    storage_replication: Literal["GRS", "RAGRS", "GZRS", "RAGZRS"]
    soft_delete_days: int = Field(ge=7, le=365)
    log_retention_days: int = Field(ge=30, le=730)
    bronze_cool_after_days: PositiveInt
    secret_expiry: datetime
    kafka: KafkaConfig
    databricks: DatabricksConfig
    dashboard: DashboardConfig
    state: StateBackendConfig
    protect_stateful: bool

    @model_validator(mode="after")
    def _consistent(self) -> EnvConfig:
        if self.vnet_cidr.prefixlen > 20:
            raise ValueError("vnet_cidr must be /20 or larger to hold the Databricks subnets")
        if self.dashboard.public and self.env != "dev":
            raise ValueError(
                f"dashboard.public is refused for {self.env}: only dev may serve the dashboard without "
                "sign-in; staging and prod admit only the organisation's Entra ID users (docs/infra.md, "
                '"Who can open the dashboard")'
            )
        if self.databricks.engine == "keyed" and self.pipeline_mode != "continuous":
            raise ValueError(
                f"{self.env}: the keyed engine runs `pulse pipeline all`, which only the continuous mode "
                "runs; set databricks.pipeline_mode='continuous' or engine='driver'"
            )
        Namer(self.prefix, self.env, self.name_seed)  # fails early on a prefix outside the naming bounds
        return self

    @property
    def stack_name(self) -> str:
        """The cdktf stack name, e.g. ``pulse-dev``."""
        return f"{self.prefix}-{self.env}"

    @property
    def pipeline_mode(self) -> PipelineMode:
        """How the pipeline job runs here: the configured mode, else the environment's default."""
        return self.databricks.pipeline_mode or DEFAULT_PIPELINE_MODE[self.env]

    @property
    def artifacts(self) -> ArtifactVolume:
        """Where the deploy uploads the wheel and its record: a volume only the deployer can write."""
        return ArtifactVolume(catalog=f"{self.prefix.replace('-', '_')}_{self.env}")

    @property
    def resource_group_name(self) -> str:
        """The environment's resource group: made at bootstrap, the deploy identity's whole scope."""
        return self.namer.name(ResourceKind.RESOURCE_GROUP, "rg")

    @property
    def secret_scope_name(self) -> str:
        """The Key Vault-backed Databricks secret scope: made at bootstrap by a user (docs/infra.md)."""
        return self.namer.name(ResourceKind.DISPLAY_NAME, "kv")

    @property
    def namer(self) -> Namer:
        """The naming helper bound to this environment."""
        return Namer(self.prefix, self.env, self.name_seed)

    def placed(self, kind: ResourceKind, component: str, resource_group: Any) -> dict[str, Any]:
        """A resource's name, location and resource group: the arguments every Azure resource of the stack
        opens with (``resource_group`` is the environment's group, read at plan time)."""
        return {
            "name": self.namer.name(kind, component),
            "location": resource_group.location,
            "resource_group_name": resource_group.name,
        }

    @property
    def all_tags(self) -> dict[str, str]:
        """Tags on every resource: the shared ones plus the environment's own."""
        return {"project": self.prefix, "env": self.env, "managed-by": "cdktf", **self.tags}


def _state(env: str, prefix: str = "pulse", seed: str = "pulse-analytics") -> StateBackendConfig:
    # One state account per environment (bootstrapped once, docs/infra.md): each deploy identity gets data
    # access to its own account only, so dev's identity can never read prod's state and its Kafka secrets.
    namer = Namer(prefix, env, seed)
    return StateBackendConfig(
        resource_group_name=namer.name(ResourceKind.RESOURCE_GROUP, "tfstate"),
        storage_account_name=namer.name(ResourceKind.STORAGE_ACCOUNT, "tfstate"),
        key=f"{prefix}-{env}.tfstate",
    )


ORG_STACK_NAME = "pulse-confluent-org"
# The organization bootstrap's state holds every deployer key: only organization admins may read it.
ORG_STATE = _state("org")


ENVIRONMENTS: dict[str, EnvConfig] = {
    "dev": EnvConfig(
        env="dev",
        vnet_cidr=IPv4Network("10.10.0.0/20"),
        storage_replication="GRS",
        soft_delete_days=7,
        log_retention_days=30,
        bronze_cool_after_days=7,
        secret_expiry=datetime.fromisoformat("2027-12-31T00:00:00+00:00"),
        kafka=KafkaConfig(
            cluster_type="basic",
            availability="SINGLE_ZONE",
            cloud_region="westeurope",
            partitions=3,
            retention_ms=3 * 24 * 3600 * 1000,
        ),
        databricks=DatabricksConfig(
            node_type="Standard_D4ds_v5",
            min_workers=1,
            max_workers=2,
            maintenance_paused=True,
            pipeline_paused=True,
        ),
        dashboard=DashboardConfig(cpu=0.5, memory="1Gi", min_replicas=0, max_replicas=1),
        state=_state("dev"),
        protect_stateful=False,
    ),
    "staging": EnvConfig(
        env="staging",
        vnet_cidr=IPv4Network("10.20.0.0/20"),
        storage_replication="GZRS",
        soft_delete_days=14,
        log_retention_days=30,
        bronze_cool_after_days=14,
        secret_expiry=datetime.fromisoformat("2027-12-31T00:00:00+00:00"),
        kafka=KafkaConfig(
            cluster_type="standard",
            availability="MULTI_ZONE",
            cloud_region="westeurope",
            partitions=6,
            retention_ms=7 * 24 * 3600 * 1000,
        ),
        databricks=DatabricksConfig(
            node_type="Standard_D4ds_v5",
            min_workers=1,
            max_workers=4,
            maintenance_paused=False,
            pipeline_paused=False,
        ),
        dashboard=DashboardConfig(cpu=0.5, memory="1Gi", min_replicas=1, max_replicas=2),
        state=_state("staging"),
        protect_stateful=True,
    ),
    "prod": EnvConfig(
        env="prod",
        vnet_cidr=IPv4Network("10.30.0.0/20"),
        storage_replication="GZRS",
        soft_delete_days=30,
        log_retention_days=90,
        bronze_cool_after_days=30,
        secret_expiry=datetime.fromisoformat("2027-12-31T00:00:00+00:00"),
        kafka=KafkaConfig(
            cluster_type="standard",
            availability="MULTI_ZONE",
            cloud_region="westeurope",
            partitions=12,
            retention_ms=7 * 24 * 3600 * 1000,
        ),
        databricks=DatabricksConfig(
            node_type="Standard_D8ds_v5",
            min_workers=2,
            max_workers=8,
            maintenance_paused=False,
            pipeline_paused=False,
        ),
        # Prod shows the real viewers' numbers: only the members of its viewer group may open it.
        dashboard=DashboardConfig(cpu=1.0, memory="2Gi", min_replicas=2, max_replicas=5, viewer_group=True),
        state=_state("prod"),
        protect_stateful=True,
    ),
}


def load_config(env: str) -> EnvConfig:
    """Returns the configuration of one environment.

    Args:
        env: ``dev``, ``staging`` or ``prod``.

    Returns:
        The environment's frozen ``EnvConfig``.

    Raises:
        KeyError: If ``env`` is not a known environment.
    """
    try:
        return ENVIRONMENTS[env]
    except KeyError:
        raise KeyError(f"unknown environment {env!r}; expected one of {sorted(ENVIRONMENTS)}") from None
