"""The deploy artifacts volume: the jobs' wheel and the deploy record, writable by the deployer only.

Workspace folders such as ``/Workspace/Shared`` are writable by every workspace user, and whoever replaces
the wheel there runs code with the jobs' Kafka secrets. A Unity Catalog volume has grants instead:
``databricks_grants`` is authoritative, so the grants below are the only ones on each object.
"""

from __future__ import annotations

from cdktf_cdktf_provider_databricks.catalog import Catalog
from cdktf_cdktf_provider_databricks.external_location import ExternalLocation
from cdktf_cdktf_provider_databricks.grants import Grants, GrantsGrant
from cdktf_cdktf_provider_databricks.provider import DatabricksProvider
from cdktf_cdktf_provider_databricks.schema import Schema
from cdktf_cdktf_provider_databricks.volume import Volume
from constructs import Construct

from infra.config import EnvConfig

JOB_VOLUME_PRIVILEGES = ["READ_VOLUME"]
DEPLOYER_VOLUME_PRIVILEGES = ["READ_VOLUME", "WRITE_VOLUME"]


class ArtifactVolume(Construct):
    """Catalog ``pulse_<env>``, schema ``deploy`` and managed volume ``artifacts`` with their grants.

    Attributes:
        catalog: The environment's catalog (managed storage: the lake's ``artifacts`` container).
        volume: The managed volume; its path is ``config.artifacts.root``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: EnvConfig,
        provider: DatabricksProvider,
        storage: ExternalLocation,
        job_principal: str,
        deployer_principal: str,
    ) -> None:
        super().__init__(scope, id)
        names = config.artifacts
        self.catalog = Catalog(
            self,
            "catalog",
            provider=provider,
            name=names.catalog,
            storage_root=storage.url,
            # Only this workspace sees the catalog, so another environment's workspace cannot reach it.
            isolation_mode="ISOLATED",
            comment="Pulse deploy artifacts of one environment.",
            depends_on=[storage],
        )
        schema = Schema(
            self,
            "schema",
            provider=provider,
            catalog_name=self.catalog.name,
            name=names.schema_name,
            comment="What the deploy uploads: the wheel, its record, deploy scripts.",
        )
        self.volume = Volume(
            self,
            "volume",
            provider=provider,
            catalog_name=self.catalog.name,
            schema_name=schema.name,
            name=names.volume,
            volume_type="MANAGED",
            comment="Written only by the deployer; the jobs read the wheel from here.",
        )
        both = [job_principal, deployer_principal]
        Grants(
            self,
            "catalog-grants",
            provider=provider,
            catalog=self.catalog.name,
            grant=[GrantsGrant(principal=p, privileges=["USE_CATALOG"]) for p in both],
        )
        Grants(
            self,
            "schema-grants",
            provider=provider,
            schema=f"{self.catalog.name}.{schema.name}",
            grant=[GrantsGrant(principal=p, privileges=["USE_SCHEMA"]) for p in both],
        )
        Grants(
            self,
            "volume-grants",
            provider=provider,
            volume=self.volume.id,
            grant=[
                GrantsGrant(principal=job_principal, privileges=JOB_VOLUME_PRIVILEGES),
                GrantsGrant(principal=deployer_principal, privileges=DEPLOYER_VOLUME_PRIVILEGES),
            ],
        )
