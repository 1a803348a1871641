"""The environment's VNet: Databricks VNet injection, the Container Apps subnet and private endpoints.

The address space from config is carved with ``ipaddress``: two /22 subnets for Databricks (host and
container), and two /27 subnets for the Container Apps environment and for private endpoints.
"""

from __future__ import annotations

from cdktf_cdktf_provider_azurerm.data_azurerm_resource_group import DataAzurermResourceGroup
from cdktf_cdktf_provider_azurerm.nat_gateway import NatGateway
from cdktf_cdktf_provider_azurerm.nat_gateway_public_ip_association import NatGatewayPublicIpAssociation
from cdktf_cdktf_provider_azurerm.network_security_group import NetworkSecurityGroup
from cdktf_cdktf_provider_azurerm.private_dns_zone import PrivateDnsZone
from cdktf_cdktf_provider_azurerm.private_dns_zone_virtual_network_link import (
    PrivateDnsZoneVirtualNetworkLink,
)
from cdktf_cdktf_provider_azurerm.private_endpoint import (
    PrivateEndpoint,
    PrivateEndpointPrivateDnsZoneGroup,
    PrivateEndpointPrivateServiceConnection,
)
from cdktf_cdktf_provider_azurerm.public_ip import PublicIp
from cdktf_cdktf_provider_azurerm.subnet import Subnet, SubnetDelegation, SubnetDelegationServiceDelegation
from cdktf_cdktf_provider_azurerm.subnet_nat_gateway_association import SubnetNatGatewayAssociation
from cdktf_cdktf_provider_azurerm.subnet_network_security_group_association import (
    SubnetNetworkSecurityGroupAssociation,
)
from cdktf_cdktf_provider_azurerm.virtual_network import VirtualNetwork
from constructs import Construct

from infra.config import EnvConfig
from infra.naming import ResourceKind

DATABRICKS_DELEGATION_ACTIONS = [
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/subnets/prepareNetworkPolicies/action",
    "Microsoft.Network/virtualNetworks/subnets/unprepareNetworkPolicies/action",
]
PRIVATE_DNS_ZONES = {
    "blob": "privatelink.blob.core.windows.net",
    "dfs": "privatelink.dfs.core.windows.net",
    "vault": "privatelink.vaultcore.azure.net",
}
# Subnets whose workloads reach the internet (Kafka, package and image registries) through the NAT gateway:
# secure cluster connectivity gives clusters no public IP, and default outbound access is switched off.
EGRESS_SUBNETS = ("dbx-host", "dbx-container", "apps")


def plan_subnets(config: EnvConfig) -> dict[str, str]:
    """Carves the VNet address space into the four subnets.

    Args:
        config: The environment; its ``vnet_cidr`` must be /20 or larger.

    Returns:
        CIDR by subnet role: ``dbx-host``, ``dbx-container``, ``apps``, ``endpoints``.
    """
    quarters = list(config.vnet_cidr.subnets(new_prefix=22))
    small = list(quarters[2].subnets(new_prefix=27))
    return {
        "dbx-host": str(quarters[0]),
        "dbx-container": str(quarters[1]),
        "apps": str(small[0]),
        "endpoints": str(small[1]),
    }


class Network(Construct):
    """VNet, subnets with their NSGs, a NAT gateway for egress, and private DNS zones linked to the VNet.

    Attributes:
        vnet: The virtual network.
        subnets: Subnets by role (see :func:`plan_subnets`).
        nsg_associations: NSG associations by subnet role (Databricks needs the two of its subnets).
        dns_zones: Private DNS zones by sub-resource (``blob``, ``dfs``, ``vault``).
    """

    def __init__(
        self, scope: Construct, id: str, *, config: EnvConfig, resource_group: DataAzurermResourceGroup
    ) -> None:
        super().__init__(scope, id)
        namer = config.namer
        location, group, tags = resource_group.location, resource_group.name, config.all_tags
        self.vnet = VirtualNetwork(
            self,
            "vnet",
            name=namer.name(ResourceKind.VIRTUAL_NETWORK, "net"),
            address_space=[str(config.vnet_cidr)],
            location=location,
            resource_group_name=group,
            tags=tags,
        )
        delegations = {
            "dbx-host": "Microsoft.Databricks/workspaces",
            "dbx-container": "Microsoft.Databricks/workspaces",
            "apps": "Microsoft.App/environments",
        }
        self.subnets: dict[str, Subnet] = {}
        self.nsg_associations: dict[str, SubnetNetworkSecurityGroupAssociation] = {}
        for role, cidr in plan_subnets(config).items():
            delegation = delegations.get(role)
            self.subnets[role] = Subnet(
                self,
                f"subnet-{role}",
                name=namer.name(ResourceKind.SUBNET, role),
                resource_group_name=resource_group.name,
                virtual_network_name=self.vnet.name,
                address_prefixes=[cidr],
                default_outbound_access_enabled=False,
                private_endpoint_network_policies="Enabled" if role == "endpoints" else None,
                delegation=[
                    SubnetDelegation(
                        name=role,
                        service_delegation=SubnetDelegationServiceDelegation(
                            name=delegation,
                            actions=DATABRICKS_DELEGATION_ACTIONS
                            if delegation.startswith("Microsoft.Databricks")
                            else ["Microsoft.Network/virtualNetworks/subnets/join/action"],
                        ),
                    )
                ]
                if delegation
                else None,
            )
            # Databricks manages its own rules in its NSG; every other subnet gets a locked-down NSG too.
            nsg = NetworkSecurityGroup(
                self,
                f"nsg-{role}",
                name=namer.name(ResourceKind.NETWORK_SECURITY_GROUP, role),
                location=location,
                resource_group_name=group,
                tags=tags,
            )
            self.nsg_associations[role] = SubnetNetworkSecurityGroupAssociation(
                self,
                f"nsg-association-{role}",
                subnet_id=self.subnets[role].id,
                network_security_group_id=nsg.id,
            )

        public_ip = PublicIp(
            self,
            "egress-ip",
            name=namer.name(ResourceKind.VIRTUAL_NETWORK, "egress-ip"),
            allocation_method="Static",
            sku="Standard",
            location=location,
            resource_group_name=group,
            tags=tags,
        )
        nat = NatGateway(
            self,
            "nat",
            name=namer.name(ResourceKind.VIRTUAL_NETWORK, "nat"),
            sku_name="Standard",
            location=location,
            resource_group_name=group,
            tags=tags,
        )
        NatGatewayPublicIpAssociation(
            self, "nat-ip", nat_gateway_id=nat.id, public_ip_address_id=public_ip.id
        )
        for role in EGRESS_SUBNETS:
            SubnetNatGatewayAssociation(
                self, f"nat-association-{role}", subnet_id=self.subnets[role].id, nat_gateway_id=nat.id
            )

        self.dns_zones: dict[str, PrivateDnsZone] = {}
        for service, zone_name in PRIVATE_DNS_ZONES.items():
            zone = PrivateDnsZone(
                self,
                f"dns-{service}",
                name=zone_name,
                resource_group_name=resource_group.name,
                tags=config.all_tags,
            )
            PrivateDnsZoneVirtualNetworkLink(
                self,
                f"dns-link-{service}",
                name=namer.name(ResourceKind.VIRTUAL_NETWORK, f"link-{service}"),
                private_dns_zone_name=zone.name,
                resource_group_name=resource_group.name,
                virtual_network_id=self.vnet.id,
                registration_enabled=False,
                tags=config.all_tags,
            )
            self.dns_zones[service] = zone


def private_endpoint(
    scope: Construct,
    id: str,
    *,
    config: EnvConfig,
    resource_group: DataAzurermResourceGroup,
    subnet: Subnet,
    component: str,
    target_id: str,
    sub_resource: str,
    dns_zone: PrivateDnsZone,
) -> PrivateEndpoint:
    """A private endpoint of one sub-resource of a service, registered in its private DNS zone.

    Args:
        scope: The construct that owns the service.
        id: Construct id of the endpoint.
        config: The environment (names and tags).
        resource_group: Where the endpoint lives.
        subnet: The private-endpoint subnet.
        component: Name component of the endpoint, e.g. ``lake-blob``.
        target_id: Token of the service's resource id.
        sub_resource: The service's sub-resource (``blob``, ``dfs``, ``vault``); it also names the
            connection and the DNS zone group.
        dns_zone: The private DNS zone of that sub-resource.

    Returns:
        The endpoint.
    """
    return PrivateEndpoint(
        scope,
        id,
        **config.placed(ResourceKind.PRIVATE_ENDPOINT, component, resource_group),
        subnet_id=subnet.id,
        private_service_connection=PrivateEndpointPrivateServiceConnection(
            name=sub_resource,
            private_connection_resource_id=target_id,
            subresource_names=[sub_resource],
            is_manual_connection=False,
        ),
        private_dns_zone_group=PrivateEndpointPrivateDnsZoneGroup(
            name=sub_resource, private_dns_zone_ids=[dns_zone.id]
        ),
        tags=config.all_tags,
    )
