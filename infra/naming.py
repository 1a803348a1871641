"""Valid Azure names for every resource type the stacks create.

Every name follows ``<prefix>-<component>-<env>`` (hyphens dropped where Azure forbids them). Names that
must be unique across Azure (storage accounts, key vaults) also carry a short deterministic suffix, derived
from the environment's ``name_seed`` so that a re-synth yields the same name and a collision is fixed by
changing the seed.

Documented input bounds (checked by :class:`Namer` and by the property tests):

* ``prefix``: 1-12 characters, lowercase letters and digits with single inner hyphens, starts with a letter.
* ``env``: 2-8 characters, lowercase letters and digits, starts with a letter.
* ``component``: 1-16 characters, same alphabet as ``prefix``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX_PATTERN = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,11}")
ENV_PATTERN = re.compile(r"[a-z][a-z0-9]{1,7}")
COMPONENT_PATTERN = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,15}")
SUFFIX_LENGTH = 6


class ResourceKind(StrEnum):
    """The Azure (and Confluent) resource types that get generated names."""

    RESOURCE_GROUP = "resource_group"
    STORAGE_ACCOUNT = "storage_account"
    KEY_VAULT = "key_vault"
    LOG_ANALYTICS = "log_analytics"
    VIRTUAL_NETWORK = "virtual_network"
    SUBNET = "subnet"
    NETWORK_SECURITY_GROUP = "network_security_group"
    PRIVATE_ENDPOINT = "private_endpoint"
    CONTAINER_APP_ENVIRONMENT = "container_app_environment"
    CONTAINER_APP = "container_app"
    DATABRICKS_WORKSPACE = "databricks_workspace"
    DATABRICKS_ACCESS_CONNECTOR = "databricks_access_connector"
    DISPLAY_NAME = "display_name"


@dataclass(frozen=True)
class NameRule:
    """The naming rule Azure enforces for one resource type.

    Attributes:
        min_length: Shortest allowed name.
        max_length: Longest allowed name.
        pattern: Regular expression the whole name must match.
        separator: Joins the name parts; empty where hyphens are not allowed.
        globally_unique: Whether the name must be unique across all of Azure.
        no_double_hyphen: Whether ``--`` is forbidden.
    """

    min_length: int
    max_length: int
    pattern: re.Pattern[str]
    separator: str = "-"
    globally_unique: bool = False
    no_double_hyphen: bool = True

    def is_valid(self, name: str) -> bool:
        """Tells whether ``name`` satisfies this rule.

        Args:
            name: The candidate name.

        Returns:
            True when length, characters and hyphen placement are all allowed.
        """
        if not self.min_length <= len(name) <= self.max_length:
            return False
        if self.no_double_hyphen and "--" in name:
            return False
        return self.pattern.fullmatch(name) is not None


# Sources: "Naming rules and restrictions for Azure resources" (Microsoft Learn) for each provider namespace.
RULES: dict[ResourceKind, NameRule] = {
    ResourceKind.RESOURCE_GROUP: NameRule(1, 90, re.compile(r"[a-zA-Z0-9_.()-]*[a-zA-Z0-9_()-]")),
    ResourceKind.STORAGE_ACCOUNT: NameRule(
        3, 24, re.compile(r"[a-z0-9]+"), separator="", globally_unique=True
    ),
    ResourceKind.KEY_VAULT: NameRule(
        3, 24, re.compile(r"[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]"), globally_unique=True
    ),
    ResourceKind.LOG_ANALYTICS: NameRule(4, 63, re.compile(r"[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]")),
    ResourceKind.VIRTUAL_NETWORK: NameRule(2, 64, re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]")),
    ResourceKind.SUBNET: NameRule(1, 80, re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9_.-]*[a-zA-Z0-9_])?")),
    ResourceKind.NETWORK_SECURITY_GROUP: NameRule(
        1, 80, re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9_.-]*[a-zA-Z0-9_])?")
    ),
    ResourceKind.PRIVATE_ENDPOINT: NameRule(2, 64, re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]")),
    ResourceKind.CONTAINER_APP_ENVIRONMENT: NameRule(2, 60, re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")),
    ResourceKind.CONTAINER_APP: NameRule(2, 32, re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")),
    ResourceKind.DATABRICKS_WORKSPACE: NameRule(3, 64, re.compile(r"[a-zA-Z0-9_-]+")),
    ResourceKind.DATABRICKS_ACCESS_CONNECTOR: NameRule(3, 64, re.compile(r"[a-zA-Z0-9_-]+")),
    # Confluent display names and Databricks object names: generous, but kept to the same alphabet.
    ResourceKind.DISPLAY_NAME: NameRule(1, 64, re.compile(r"[a-z][a-z0-9-]*[a-z0-9]|[a-z]")),
}


def _shrink(first: str, second: str, budget: int) -> tuple[str, str]:
    """Shortens the longer of two name parts until both fit ``budget`` characters together."""
    while len(first) + len(second) > budget:
        if len(first) >= len(second):
            first = first[: len(first) - 1].rstrip("-")
        else:
            second = second[: len(second) - 1].rstrip("-")
    return first, second


@dataclass(frozen=True)
class Namer:
    """Builds ``<prefix>-<component>-<env>`` names that satisfy each resource type's Azure rule.

    Attributes:
        prefix: Project prefix, e.g. ``pulse``.
        env: Environment name, e.g. ``dev``.
        seed: Any string; changing it changes the global-uniqueness suffix.
    """

    prefix: str
    env: str
    seed: str

    def __post_init__(self) -> None:
        if PREFIX_PATTERN.fullmatch(self.prefix) is None:
            raise ValueError(f"prefix {self.prefix!r} is outside the documented bounds")
        if ENV_PATTERN.fullmatch(self.env) is None:
            raise ValueError(f"env {self.env!r} is outside the documented bounds")

    @property
    def suffix(self) -> str:
        """Deterministic lowercase-hex suffix that makes global names unique per seed and environment."""
        digest = hashlib.sha256(f"{self.seed}:{self.prefix}:{self.env}".encode()).hexdigest()
        return digest[:SUFFIX_LENGTH]

    def name(self, kind: ResourceKind, component: str) -> str:
        """Returns the name of ``component`` for a resource of type ``kind``.

        Args:
            kind: The resource type whose Azure rule the name must meet.
            component: What the resource is within Pulse, e.g. ``lake`` or ``dashboard``.

        Returns:
            A name that satisfies ``RULES[kind]``.

        Raises:
            ValueError: If ``component`` is outside the documented bounds.
        """
        if COMPONENT_PATTERN.fullmatch(component) is None:
            raise ValueError(f"component {component!r} is outside the documented bounds")
        rule = RULES[kind]
        sep = rule.separator
        prefix, component = self.prefix, component
        if not sep:
            prefix, component = prefix.replace("-", ""), component.replace("-", "")
        tail = [self.env, self.suffix] if rule.globally_unique else [self.env]
        budget = rule.max_length - len(sep.join(tail)) - 2 * len(sep)
        prefix, component = _shrink(prefix, component, budget)
        result = sep.join([prefix, component, *tail])
        if not rule.is_valid(result):  # pragma: no cover - guarded by the property tests
            raise ValueError(f"generated {kind} name {result!r} breaks its Azure rule")
        return result
