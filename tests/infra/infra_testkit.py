"""Shared helpers of the infra tests (a uniquely named module, so it never clashes with another conftest)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CHECKPOINT_DISABLE", "1")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra.config import ENVIRONMENTS, EnvConfig  # noqa: E402

ENV_NAMES = tuple(ENVIRONMENTS)
KEY_VAULT_SECRET = "Microsoft.KeyVault/vaults/secrets"  # noqa: S105 - an ARM type, no secret
AUTH_CONFIG = "Microsoft.App/containerApps/authConfigs"


def public_dev_config() -> EnvConfig:
    """Dev as it would be if its config opted out of sign-in (``dashboard.public``), under its own prefix so
    that its stack synthesizes next to the real ones."""
    dev = ENVIRONMENTS["dev"]
    return EnvConfig.model_validate(
        dev.model_dump()
        | {"prefix": "pulse-open", "dashboard": dev.dashboard.model_dump() | {"public": True}}
    )


def keyed_staging_config() -> EnvConfig:
    """Staging as it would be if its config ran the keyed engine with 32 state partitions, under its own
    prefix so that its stack synthesizes next to the real ones."""
    staging = ENVIRONMENTS["staging"]
    databricks = staging.databricks.model_dump() | {"engine": "keyed", "state_partitions": 32}
    return EnvConfig.model_validate(
        staging.model_dump() | {"prefix": "pulse-keyed", "databricks": databricks}
    )


@dataclass(frozen=True)
class SynthesizedStack:
    """One environment's synthesized stack.

    Attributes:
        config: The environment it was built from (None for the organization bootstrap stack).
        path: Its ``cdk.tf.json``.
        text: The raw JSON text (what cdktf's ``Testing`` matchers take).
        doc: The parsed JSON.
    """

    config: EnvConfig | None
    path: Path
    text: str
    doc: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one type, by logical id (empty when there are none)."""
        return self.doc.get("resource", {}).get(resource_type, {})

    def arm_resources(self, arm_type: str) -> dict[str, dict[str, Any]]:
        """``azapi_resource`` blocks of one ARM type (any API version), by logical id."""
        return {
            lid: body
            for lid, body in self.resources("azapi_resource").items()
            if body["type"].split("@")[0] == arm_type
        }

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        """The single resource of a type, as ``(logical id, body)``; fails when there is not exactly one."""
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def ref(self, resource_type: str, logical_id: str, attribute: str) -> str:
        """The Terraform interpolation that points at a resource attribute."""
        return f"${{{resource_type}.{logical_id}.{attribute}}}"
