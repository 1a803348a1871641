"""Log Analytics: the one sink for platform diagnostics and the Container Apps logs."""

from __future__ import annotations

from cdktf_cdktf_provider_azurerm.data_azurerm_resource_group import DataAzurermResourceGroup
from cdktf_cdktf_provider_azurerm.log_analytics_workspace import LogAnalyticsWorkspace
from constructs import Construct

from infra.config import EnvConfig
from infra.naming import ResourceKind


class Monitoring(Construct):
    """The environment's Log Analytics workspace.

    Attributes:
        workspace: The Log Analytics workspace that diagnostics and app logs go to.
    """

    def __init__(
        self, scope: Construct, id: str, *, config: EnvConfig, resource_group: DataAzurermResourceGroup
    ) -> None:
        super().__init__(scope, id)
        self.workspace = LogAnalyticsWorkspace(
            self,
            "workspace",
            **config.placed(ResourceKind.LOG_ANALYTICS, "logs", resource_group),
            sku="PerGB2018",
            retention_in_days=config.log_retention_days,
            tags=config.all_tags,
        )
