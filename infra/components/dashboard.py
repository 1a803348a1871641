"""The Streamlit dashboard as an Azure Container App that reads Gold with a user-delegation SAS.

Access model: the app's system-assigned identity holds

* ``Storage Blob Data Reader`` on the **gold container only**, and
* ``Storage Blob Delegator`` on the storage account, which grants nothing but
  ``blobServices/generateUserDelegationKey`` (Azure only offers that action at account scope).

A user-delegation SAS can never grant more than its signer holds, so every SAS the app mints is limited to
reading gold, whatever permissions it asks for; the account's SAS policy caps its lifetime at one hour.

Who may open it: the app's ingress is external, so Container Apps' built-in authentication stands in front
of it and admits only users who sign in with the organisation's Entra ID tenant (only the members of the
viewer group, where the config names one). Streamlit's health path stays open, for the probes and the
deploy's smoke test. Only dev may opt out (``DashboardConfig.public``), and its Terraform plan then warns.
"""

from __future__ import annotations

from cdktf import Op, TerraformStack
from cdktf_cdktf_provider_azurerm.container_app import (
    ContainerApp,
    ContainerAppIdentity,
    ContainerAppIngress,
    ContainerAppIngressTrafficWeight,
    ContainerAppSecret,
    ContainerAppTemplate,
    ContainerAppTemplateContainer,
    ContainerAppTemplateContainerEnv,
    ContainerAppTemplateContainerLivenessProbe,
    ContainerAppTemplateContainerReadinessProbe,
)
from cdktf_cdktf_provider_azurerm.container_app_environment import (
    ContainerAppEnvironment,
    ContainerAppEnvironmentWorkloadProfile,
)
from cdktf_cdktf_provider_azurerm.data_azurerm_resource_group import DataAzurermResourceGroup
from cdktf_cdktf_provider_azurerm.log_analytics_workspace import LogAnalyticsWorkspace
from cdktf_cdktf_provider_azurerm.role_assignment import RoleAssignment
from cdktf_cdktf_provider_azurerm.subnet import Subnet
from constructs import Construct

from infra.components.azapi_resources import ContainerAppEntraSignIn
from infra.components.datalake import DataLake
from infra.config import EnvConfig
from infra.naming import ResourceKind
from infra.variables import SignInInputs

STREAMLIT_PORT = 8501
HEALTH_PATH = "/_stcore/health"
WORKLOAD_PROFILE = "Consumption"
# The Container App secret holding the sign-in registration's client secret (the portal's own name for it).
SIGN_IN_SECRET = "microsoft-provider-authentication-secret"  # noqa: S105 - a secret's name, not its value


class Dashboard(Construct):
    """Container Apps environment, the dashboard app, and its identity's access to Gold.

    Attributes:
        environment: The Container Apps environment (VNet-integrated, logs to Log Analytics).
        app: The dashboard container app.
        url: ``https://<app fqdn>``.
        sign_in: The app's Entra ID sign-in, or None where the config serves the dashboard publicly.
        gold_reader: Role assignment of ``Storage Blob Data Reader`` scoped to the gold container.
        delegator: Role assignment of ``Storage Blob Delegator`` scoped to the storage account.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvConfig,
        resource_group: DataAzurermResourceGroup,
        log_analytics: LogAnalyticsWorkspace,
        apps_subnet: Subnet,
        lake: DataLake,
        image: str,
        tenant_id: str,
        sign_in: SignInInputs | None,
    ) -> None:
        """Creates the environment, the app, its sign-in and its role assignments.

        Args:
            scope: Parent construct.
            id: Construct id.
            config: The environment (``config.dashboard`` says who may open the dashboard).
            resource_group: The environment's resource group.
            log_analytics: Where the environment sends its logs.
            apps_subnet: The subnet the environment is integrated into.
            lake: The lake whose gold container the app reads.
            image: Token of the dashboard image.
            tenant_id: Token of the organisation's Entra ID tenant (the one the deploy signs in to).
            sign_in: The sign-in inputs; None exactly where ``config.dashboard.public``.
        """
        super().__init__(scope, id)
        if (sign_in is None) != config.dashboard.public:
            raise ValueError("sign-in inputs are needed exactly where the dashboard is not public")
        namer = config.namer
        sizing = config.dashboard
        self.environment = ContainerAppEnvironment(
            self,
            "environment",
            **config.placed(ResourceKind.CONTAINER_APP_ENVIRONMENT, "apps", resource_group),
            log_analytics_workspace_id=log_analytics.id,
            infrastructure_subnet_id=apps_subnet.id,
            # Without a name Azure generates one, the next plan sees a difference on this force-new
            # attribute and replaces the environment (and the dashboard's URL) on every later deploy
            # (azurerm #27481, #31839). Azure creates this group; it must not exist beforehand.
            infrastructure_resource_group_name=config.namer.name(ResourceKind.RESOURCE_GROUP, "apps-infra"),
            internal_load_balancer_enabled=False,
            workload_profile=[
                ContainerAppEnvironmentWorkloadProfile(
                    name=WORKLOAD_PROFILE, workload_profile_type=WORKLOAD_PROFILE
                )
            ],
            tags=config.all_tags,
        )
        self.app = ContainerApp(
            self,
            "app",
            name=namer.name(ResourceKind.CONTAINER_APP, "dashboard"),
            resource_group_name=resource_group.name,
            container_app_environment_id=self.environment.id,
            revision_mode="Single",
            workload_profile_name=WORKLOAD_PROFILE,
            identity=ContainerAppIdentity(type="SystemAssigned"),
            secret=[ContainerAppSecret(name=SIGN_IN_SECRET, value=sign_in.client_secret)]
            if sign_in
            else None,
            ingress=ContainerAppIngress(
                external_enabled=True,
                target_port=STREAMLIT_PORT,
                transport="auto",
                allow_insecure_connections=False,
                traffic_weight=[ContainerAppIngressTrafficWeight(latest_revision=True, percentage=100)],
            ),
            template=ContainerAppTemplate(
                min_replicas=sizing.min_replicas,
                max_replicas=sizing.max_replicas,
                container=[
                    ContainerAppTemplateContainer(
                        name="dashboard",
                        image=image,
                        cpu=sizing.cpu,
                        memory=sizing.memory,
                        env=[
                            ContainerAppTemplateContainerEnv(name=name, value=value)
                            for name, value in {
                                "PULSE_ENV": config.env,
                                "PULSE_LAKE": lake.lake_url_template,
                                "PULSE_STORAGE_ACCOUNT": lake.account.name,
                            }.items()
                        ],
                        liveness_probe=[
                            ContainerAppTemplateContainerLivenessProbe(
                                transport="HTTP", port=STREAMLIT_PORT, path=HEALTH_PATH, initial_delay=10
                            )
                        ],
                        readiness_probe=[
                            ContainerAppTemplateContainerReadinessProbe(
                                transport="HTTP", port=STREAMLIT_PORT, path=HEALTH_PATH
                            )
                        ],
                    )
                ],
            ),
            tags=config.all_tags,
        )
        self.url = f"https://{self.app.ingress.fqdn}"
        self.sign_in = self._require_sign_in(tenant_id, sign_in) if sign_in else None
        if sign_in is None:
            self._warn_in_the_plan(config.env)
        principal = self.app.identity.principal_id
        self.gold_reader = RoleAssignment(
            self,
            "gold-reader",
            scope=lake.containers["gold"].resource_manager_id,
            role_definition_name="Storage Blob Data Reader",
            principal_id=principal,
            principal_type="ServicePrincipal",
            description="The dashboard reads the gold container and nothing else.",
        )
        self.delegator = RoleAssignment(
            self,
            "sas-delegator",
            scope=lake.account.id,
            role_definition_name="Storage Blob Delegator",
            principal_id=principal,
            principal_type="ServicePrincipal",
            description="Lets the dashboard get a user-delegation key; grants no data access by itself.",
        )

    def _require_sign_in(self, tenant_id: str, sign_in: SignInInputs) -> ContainerAppEntraSignIn:
        return ContainerAppEntraSignIn(
            self,
            "sign-in",
            app_id=self.app.id,
            tenant_id=tenant_id,
            client_id=sign_in.client_id,
            client_secret_setting=SIGN_IN_SECRET,
            # Whether or not a probe passes the auth sidecar, it and the deploy's smoke test need no token.
            excluded_paths=[HEALTH_PATH],
            viewer_group_id=sign_in.viewer_group_id,
        )

    def _warn_in_the_plan(self, env: str) -> None:
        # A check that fails is a warning in `terraform plan`, which the plan job puts in the run summary.
        TerraformStack.of(self).add_override(
            "check.dashboard_sign_in",
            {
                "assert": {
                    "condition": Op.not_(self.app.ingress.external_enabled),
                    "error_message": (
                        f"The {env} dashboard is served to the internet without sign-in (dashboard.public in "
                        f"infra/config.py): anyone who has its URL sees {env}'s Gold, viewers' ids included."
                    ),
                }
            },
        )
