"""Databricks: a premium VNet-injected workspace, and inside it the scope, policy and pipeline jobs.

Two constructs, because the workspace must exist before the lake (the lake's firewall trusts its access
connector) while the jobs need the lake:

* :class:`DatabricksWorkspace`: the Azure side (workspace, access connector).
* :class:`DatabricksPipeline`: the workspace side (Key Vault-backed secret scope, cluster policy, Unity
  Catalog storage credential and external locations, the continuous streaming job and the maintenance job).
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_azurerm.data_azurerm_resource_group import DataAzurermResourceGroup
from cdktf_cdktf_provider_azurerm.databricks_access_connector import (
    DatabricksAccessConnector,
    DatabricksAccessConnectorIdentity,
)
from cdktf_cdktf_provider_azurerm.databricks_workspace import (
    DatabricksWorkspace as AzureDatabricksWorkspace,
)
from cdktf_cdktf_provider_azurerm.databricks_workspace import DatabricksWorkspaceCustomParameters
from cdktf_cdktf_provider_azurerm.role_assignment import RoleAssignment
from cdktf_cdktf_provider_databricks.access_control_rule_set import (
    AccessControlRuleSet,
    AccessControlRuleSetGrantRules,
)
from cdktf_cdktf_provider_databricks.cluster_policy import ClusterPolicy
from cdktf_cdktf_provider_databricks.credential import Credential, CredentialAzureManagedIdentity
from cdktf_cdktf_provider_databricks.external_location import ExternalLocation
from cdktf_cdktf_provider_databricks.grants import Grants, GrantsGrant
from cdktf_cdktf_provider_databricks.job import (
    Job,
    JobContinuous,
    JobEmailNotifications,
    JobJobCluster,
    JobJobClusterNewCluster,
    JobJobClusterNewClusterAutoscale,
    JobJobClusterNewClusterAzureAttributes,
    JobRunAs,
    JobSchedule,
    JobTask,
    JobTaskDependsOn,
    JobTaskLibrary,
    JobTaskPythonWheelTask,
)
from cdktf_cdktf_provider_databricks.permissions import Permissions, PermissionsAccessControl
from cdktf_cdktf_provider_databricks.provider import DatabricksProvider
from cdktf_cdktf_provider_databricks.secret_acl import SecretAcl
from cdktf_cdktf_provider_databricks.service_principal import ServicePrincipal
from cdktf_cdktf_provider_databricks.storage_credential import (
    StorageCredential,
    StorageCredentialAzureManagedIdentity,
)
from constructs import Construct

from infra.components.artifacts import ArtifactVolume
from infra.components.confluent import CONSUMER_GROUP_PREFIX, TOPIC_NAME, ConfluentKafka
from infra.components.datalake import ARTIFACTS_CONTAINER, LAYERS, DataLake
from infra.components.network import Network
from infra.components.time_resources import TimeSleep
from infra.config import DATABRICKS_GOLD_WRITER, EnvConfig
from infra.naming import ResourceKind

WHEEL_PACKAGE = "pulse"
WHEEL_ENTRY_POINT = "pulse"
# The continuous job runs one task: `pulse pipeline all` writes every layer in each micro-batch.
PIPELINE_TASKS = ("all",)
# The scheduled job runs the layers in order, each with --once (availableNow), then the cluster stops:
# `bronze` lands Kafka in Bronze, `silver` builds Silver (+ quarantine) and Gold from it.
SCHEDULED_LAYERS = ("bronze", "silver")
MAINTENANCE_PARAMETERS = ["maintenance"]
# The jobs read and write the layers by path (abfss://), which Unity Catalog allows with these privileges.
JOB_LOCATION_PRIVILEGES = ["READ_FILES", "WRITE_FILES"]
# Setting a job's run_as to a service principal needs the Service Principal User role on it; its creator
# holds Service Principal Manager only, which does not include User (Databricks "Roles for managing
# service principals"). The rule set is authoritative, so it lists the Manager role too.
JOB_PRINCIPAL_ROLES = ("roles/servicePrincipal.manager", "roles/servicePrincipal.user")
# Azure role assignments reach the data plane minutes after they are created; Unity Catalog validates the
# external locations as the access connector right after, so the first apply waits this long once.
ROLE_PROPAGATION_WAIT = "300s"


class DatabricksWorkspace(Construct):
    """The premium workspace with secure cluster connectivity, injected into the environment's VNet.

    Attributes:
        workspace: The Azure Databricks workspace.
        access_connector: Managed identity Unity Catalog uses to reach the lake.
        url: ``https://<workspace host>``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvConfig,
        resource_group: DataAzurermResourceGroup,
        network: Network,
    ) -> None:
        super().__init__(scope, id)
        namer = config.namer
        self.access_connector = DatabricksAccessConnector(
            self,
            "access-connector",
            **config.placed(ResourceKind.DATABRICKS_ACCESS_CONNECTOR, "lake-access", resource_group),
            identity=DatabricksAccessConnectorIdentity(type="SystemAssigned"),
            tags=config.all_tags,
        )
        # The identity of the jobs' delta-rs commits (a Unity Catalog service credential): its own, so it
        # can be granted the layer containers only, where Unity Catalog's identity has the whole lake.
        self.commit_connector = DatabricksAccessConnector(
            self,
            "commit-connector",
            **config.placed(ResourceKind.DATABRICKS_ACCESS_CONNECTOR, "lake-commits", resource_group),
            identity=DatabricksAccessConnectorIdentity(type="SystemAssigned"),
            tags=config.all_tags,
        )
        host, container = network.subnets["dbx-host"], network.subnets["dbx-container"]
        self.workspace = AzureDatabricksWorkspace(
            self,
            "workspace",
            **config.placed(ResourceKind.DATABRICKS_WORKSPACE, "dbw", resource_group),
            managed_resource_group_name=namer.name(ResourceKind.RESOURCE_GROUP, "dbw-managed"),
            sku="premium",
            infrastructure_encryption_enabled=True,
            network_security_group_rules_required="AllRules",
            custom_parameters=DatabricksWorkspaceCustomParameters(
                no_public_ip=True,
                virtual_network_id=network.vnet.id,
                public_subnet_name=host.name,
                private_subnet_name=container.name,
                public_subnet_network_security_group_association_id=network.nsg_associations["dbx-host"].id,
                private_subnet_network_security_group_association_id=network.nsg_associations[
                    "dbx-container"
                ].id,
            ),
            tags=config.all_tags,
        )
        self.url = f"https://{self.workspace.workspace_url}"


class DatabricksPipeline(Construct):
    """What runs in the workspace: secrets, policy, lake access and the pipeline jobs.

    Attributes:
        secret_scope_name: The Key Vault-backed scope holding the Kafka credentials (a bootstrap object).
        job_principal_users: The job principal's rule set: the deployer may manage it and run as it.
        policy: Cluster policy every job cluster uses.
        streaming_job: Continuous job with the bronze, silver and gold tasks.
        maintenance_job: Scheduled OPTIMIZE/VACUUM job.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvConfig,
        workspace: DatabricksWorkspace,
        lake: DataLake,
        kafka: ConfluentKafka,
        wheel_uri: str,
        engine_jar_uri: str | None,
        alert_emails: list[str],
        deployer_application_id: str,
        databricks_account_id: str,
    ) -> None:
        super().__init__(scope, id)
        namer = config.namer
        dbx = config.databricks
        provider = DatabricksProvider(
            self,
            "provider",
            host=workspace.url,
            azure_workspace_resource_id=workspace.workspace.id,
        )

        lake_access = RoleAssignment(
            self,
            "lake-contributor",
            scope=lake.account.id,
            role_definition_name="Storage Blob Data Contributor",
            principal_id=workspace.access_connector.identity.principal_id,
            description="Unity Catalog reads and writes the lake through the access connector.",
        )
        lake_access_propagated = TimeSleep(
            self,
            "lake-contributor-propagation",
            create_duration=ROLE_PROPAGATION_WAIT,
            triggers={"role_assignment_id": lake_access.id},
            depends_on=[lake_access],
        )
        # delta-rs commits the jobs' appends and Gold MERGEs from the driver (PULSE_GOLD_WRITER=delta-rs):
        # Unity Catalog hands storage credentials to Spark only, so the jobs get a service credential,
        # its supported way to give job code a cloud credential (pulse.lake_access, docs/pipeline.md).
        commit_access = [
            RoleAssignment(
                self,
                f"lake-commits-{layer}",
                scope=lake.containers[layer].resource_manager_id,
                role_definition_name="Storage Blob Data Contributor",
                principal_id=workspace.commit_connector.identity.principal_id,
                principal_type="ServicePrincipal",
                description=f"The jobs' delta-rs commits write the {layer} container and nothing else.",
            )
            for layer in LAYERS
        ]
        commit_access_propagated = TimeSleep(
            self,
            "lake-commits-propagation",
            create_duration=ROLE_PROPAGATION_WAIT,
            triggers={f"role_assignment_{i}": a.id for i, a in enumerate(commit_access)},
            depends_on=commit_access,
        )
        self.commit_credential = Credential(
            self,
            "commit-credential",
            provider=provider,
            name=f"{config.prefix}_lake_commits_{config.env}",
            purpose="SERVICE",
            azure_managed_identity=CredentialAzureManagedIdentity(
                access_connector_id=workspace.commit_connector.id
            ),
            comment="The Pulse jobs' delta-rs commits to the lake's layers (PULSE_DELTA_RS_CREDENTIAL).",
            depends_on=[commit_access_propagated],
        )
        credential = StorageCredential(
            self,
            "storage-credential",
            provider=provider,
            name=f"{config.prefix}_lake_{config.env}",
            azure_managed_identity=StorageCredentialAzureManagedIdentity(
                access_connector_id=workspace.access_connector.id
            ),
            comment="Access to the Pulse lake through the workspace's access connector.",
            depends_on=[lake_access_propagated],
        )
        # The identity every job runs as: never a person, so jobs neither break when someone leaves nor
        # run with a person's rights. Databricks-managed, so it holds no Azure credential of its own.
        self.job_principal = ServicePrincipal(
            self,
            "job-principal",
            provider=provider,
            display_name=namer.name(ResourceKind.DISPLAY_NAME, "jobs"),
            allow_cluster_create=False,
        )
        job_sp = self.job_principal.application_id
        # The environment's deploy identity, named by the deploy (not read from whoever runs the plan), is
        # the only writer of the wheel and may run the jobs (and the reset run) as their principal.
        self.deployer_application_id = deployer_application_id
        self.job_principal_users = AccessControlRuleSet(
            self,
            "job-principal-users",
            provider=provider,
            name=f"accounts/{databricks_account_id}/servicePrincipals/{job_sp}/ruleSets/default",
            grant_rules=[
                AccessControlRuleSetGrantRules(
                    principals=[f"servicePrincipals/{deployer_application_id}"], role=role
                )
                for role in JOB_PRINCIPAL_ROLES
            ],
        )

        self.locations: dict[str, ExternalLocation] = {}
        for layer in (*LAYERS, ARTIFACTS_CONTAINER):
            # Validated on create: the lake's firewall admits the access connector (datalake.py), so UC's
            # validation reaches the container and a wrong credential fails the deploy, not the first job.
            self.locations[layer] = ExternalLocation(
                self,
                f"location-{layer}",
                provider=provider,
                name=f"{config.prefix}_{layer}_{config.env}",
                url=lake.abfss_url(layer),
                credential_name=credential.name,
                comment=f"The {layer} container of the Pulse lake.",
            )
        # ACCESS lets the jobs' principal ask for the service credential's tokens; nobody else holds it.
        Grants(
            self,
            "commit-credential-grants",
            provider=provider,
            credential=self.commit_credential.name,
            grant=[GrantsGrant(principal=job_sp, privileges=["ACCESS"])],
        )
        for layer in LAYERS:
            Grants(
                self,
                f"location-{layer}-grants",
                provider=provider,
                external_location=self.locations[layer].id,
                grant=[GrantsGrant(principal=job_sp, privileges=JOB_LOCATION_PRIVILEGES)],
            )
        self.artifacts = ArtifactVolume(
            self,
            "artifacts",
            config=config,
            provider=provider,
            storage=self.locations[ARTIFACTS_CONTAINER],
            job_principal=job_sp,
            deployer_principal=deployer_application_id,
        )

        # A Key Vault-backed scope can only be created by a user (terraform-provider-databricks#1531), so
        # it is a bootstrap step (docs/infra.md), checked before every plan (delivery.databricks
        # check-scope); the stack only refers to it by name.
        self.secret_scope_name = config.secret_scope_name
        self.policy = ClusterPolicy(
            self,
            "policy",
            provider=provider,
            name=namer.name(ResourceKind.DISPLAY_NAME, "jobs-policy"),
            definition=json.dumps(cluster_policy_definition(config), sort_keys=True),
            description="Job clusters of the Pulse pipeline: fixed runtime, allowed sizes, tagged.",
        )
        Permissions(
            self,
            "policy-permissions",
            provider=provider,
            cluster_policy_id=self.policy.id,
            access_control=[
                PermissionsAccessControl(service_principal_name=job_sp, permission_level="CAN_USE")
            ],
        )
        SecretAcl(
            self,
            "scope-acl",
            provider=provider,
            scope=self.secret_scope_name,
            principal=job_sp,
            permission="READ",
        )
        run_as = JobRunAs(service_principal_name=job_sp)

        key_name, secret_name = kafka.secret_names["databricks"]
        scope_name = self.secret_scope_name
        env_vars = {
            "PULSE_ENV": config.env,
            "PULSE_LAKE": lake.lake_url_template,
            "PULSE_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
            "PULSE_KAFKA_TOPIC": TOPIC_NAME,
            "PULSE_KAFKA_GROUP_PREFIX": CONSUMER_GROUP_PREFIX,
            # Confluent Cloud accepts only SASL_SSL; Pulse's default is the local broker's PLAINTEXT.
            "PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            # Databricks resolves these references at cluster start; the values never leave the scope.
            "PULSE_KAFKA_API_KEY": f"{{{{secrets/{scope_name}/{key_name}}}}}",
            "PULSE_KAFKA_API_SECRET": f"{{{{secrets/{scope_name}/{secret_name}}}}}",
            # Named, not left to `auto`: the e2e exactness test runs this same value against the oracle.
            "PULSE_GOLD_WRITER": DATABRICKS_GOLD_WRITER,
            # What delta-rs commits with: a reference to a credential, whose tokens the job asks for.
            "PULSE_DELTA_RS_CREDENTIAL": self.commit_credential.name,
            # Named, not left to the default: the keyed engine's tasks also install its jar (below).
            "PULSE_ENGINE": dbx.engine,
        }
        if dbx.state_partitions is not None:
            env_vars["PULSE_STATE_PARTITIONS"] = str(dbx.state_partitions)
        library = [JobTaskLibrary(whl=wheel_uri)]
        pipeline_library = list(library)
        if dbx.engine == "keyed":
            if engine_jar_uri is None:
                raise ValueError(f"{config.env}: the keyed engine's tasks need its jar (engine_jar_uri)")
            # The operator's classes, on the driver's and the executors' classpath (`pulse.engine`).
            pipeline_library.append(JobTaskLibrary(jar=engine_jar_uri))
        notifications = JobEmailNotifications(on_failure=alert_emails, no_alert_for_skipped_runs=True)

        self.streaming_job = Job(
            self,
            "streaming-job",
            provider=provider,
            name=namer.name(ResourceKind.DISPLAY_NAME, "pipeline"),
            max_concurrent_runs=1,
            job_cluster=[
                JobJobCluster(
                    job_cluster_key="pipeline",
                    new_cluster=self._cluster(config, env_vars, dbx.min_workers, dbx.max_workers),
                )
            ],
            email_notifications=notifications,
            run_as=run_as,
            tags=config.all_tags,
            depends_on=[self.job_principal_users],
            **pipeline_run_settings(config, pipeline_library),
        )
        self.maintenance_job = Job(
            self,
            "maintenance-job",
            provider=provider,
            name=namer.name(ResourceKind.DISPLAY_NAME, "maintenance"),
            description="OPTIMIZE and VACUUM of every Pulse table.",
            schedule=JobSchedule(
                quartz_cron_expression=dbx.maintenance_cron,
                timezone_id="UTC",
                pause_status="PAUSED" if dbx.maintenance_paused else "UNPAUSED",
            ),
            max_concurrent_runs=1,
            job_cluster=[
                JobJobCluster(
                    job_cluster_key="maintenance",
                    new_cluster=self._cluster(config, env_vars, 1, dbx.max_workers),
                )
            ],
            task=[
                JobTask(
                    task_key="maintenance",
                    job_cluster_key="maintenance",
                    python_wheel_task=JobTaskPythonWheelTask(
                        package_name=WHEEL_PACKAGE,
                        entry_point=WHEEL_ENTRY_POINT,
                        parameters=MAINTENANCE_PARAMETERS,
                    ),
                    library=library,
                    max_retries=2,
                    min_retry_interval_millis=10 * 60 * 1000,
                    timeout_seconds=4 * 3600,
                )
            ],
            email_notifications=notifications,
            run_as=run_as,
            tags=config.all_tags,
            depends_on=[self.job_principal_users],
        )

    def _cluster(
        self, config: EnvConfig, env_vars: dict[str, str], min_workers: int, max_workers: int
    ) -> JobJobClusterNewCluster:
        dbx = config.databricks
        return JobJobClusterNewCluster(
            policy_id=self.policy.id,
            apply_policy_default_values=True,
            spark_version=dbx.spark_version,
            node_type_id=dbx.node_type,
            autoscale=JobJobClusterNewClusterAutoscale(min_workers=min_workers, max_workers=max_workers),
            data_security_mode="SINGLE_USER",
            azure_attributes=JobJobClusterNewClusterAzureAttributes(availability="ON_DEMAND_AZURE"),
            spark_env_vars=env_vars,
            custom_tags={"project": config.prefix},
        )


def pipeline_run_settings(config: EnvConfig, library: list[JobTaskLibrary]) -> dict[str, object]:
    """How the pipeline job runs in this environment: its trigger, its tasks and its description.

    Both modes call the same wheel entry point (``pulse pipeline <layer>``) on the same job cluster.

    Args:
        config: The environment; ``config.pipeline_mode`` picks the mode.
        library: What every task installs: the wheel, and the keyed engine's jar where it runs.

    Returns:
        Keyword arguments of the ``Job``: ``continuous`` or ``schedule``, ``task`` and ``description``.
    """
    dbx = config.databricks
    pause_status = "PAUSED" if dbx.pipeline_paused else "UNPAUSED"

    def wheel_task(task_key: str, parameters: list[str], **extra: object) -> JobTask:
        return JobTask(
            task_key=task_key,
            job_cluster_key="pipeline",
            python_wheel_task=JobTaskPythonWheelTask(
                package_name=WHEEL_PACKAGE, entry_point=WHEEL_ENTRY_POINT, parameters=parameters
            ),
            library=library,
            **extra,
        )

    if config.pipeline_mode == "continuous":
        return {
            "description": "Kafka to Bronze, Silver and Gold in each micro-batch of one long-running stream.",
            "continuous": JobContinuous(pause_status=pause_status, task_retry_mode="ON_FAILURE"),
            # Unbounded streams never finish, so the tasks run side by side, never depending on each other.
            "task": [wheel_task(f"pipeline-{task}", ["pipeline", task]) for task in PIPELINE_TASKS],
        }
    tasks = []
    for index, layer in enumerate(SCHEDULED_LAYERS):
        # With --once each layer ends, so the next one can wait for it.
        after = [JobTaskDependsOn(task_key=f"pipeline-{SCHEDULED_LAYERS[index - 1]}")] if index else None
        tasks.append(
            wheel_task(
                f"pipeline-{layer}",
                ["pipeline", layer, "--once"],
                depends_on=after,
                max_retries=1,
                min_retry_interval_millis=5 * 60 * 1000,
                timeout_seconds=2 * 3600,
            )
        )
    return {
        "description": "Kafka to Bronze, then Silver and Gold: what is available, on a schedule, then stop.",
        "schedule": JobSchedule(
            quartz_cron_expression=dbx.pipeline_cron, timezone_id="UTC", pause_status=pause_status
        ),
        "task": tasks,
    }


def cluster_policy_definition(config: EnvConfig) -> dict[str, dict[str, object]]:
    """The cluster policy of the environment's job clusters.

    Args:
        config: The environment.

    Returns:
        A Databricks cluster-policy definition: fixed runtime, the configured node type, bounded autoscale.
    """
    dbx = config.databricks
    return {
        "cluster_type": {"type": "fixed", "value": "job"},
        "spark_version": {"type": "fixed", "value": dbx.spark_version},
        "node_type_id": {"type": "allowlist", "values": [dbx.node_type]},
        "autoscale.max_workers": {"type": "range", "maxValue": dbx.max_workers},
        "data_security_mode": {"type": "fixed", "value": "SINGLE_USER"},
        "azure_attributes.availability": {"type": "fixed", "value": "ON_DEMAND_AZURE"},
        "custom_tags.project": {"type": "fixed", "value": config.prefix},
    }
