"""``hashicorp/time``'s ``time_sleep``: a pause in the apply where Azure is eventually consistent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf import ITerraformDependable
from constructs import Construct

from infra.components.raw_terraform import RawProvider, RawResource

PROVIDER_SOURCE = "hashicorp/time"
PROVIDER_VERSION = "~> 0.13"


class TimeProvider(RawProvider):
    """The ``hashicorp/time`` provider (no configuration)."""

    NAME = "time"
    SOURCE = PROVIDER_SOURCE
    VERSION = PROVIDER_VERSION


class TimeSleep(RawResource):
    """Waits ``create_duration`` once, when created or when a trigger changes; later applies do not wait.

    Args:
        scope: Parent construct.
        id: Construct id.
        create_duration: Terraform duration, e.g. ``300s``.
        triggers: Tokens whose change re-creates the sleep (so a re-created dependency waits again).
        depends_on: What must exist before the wait starts.
    """

    TF_TYPE = "time_sleep"

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        create_duration: str,
        triggers: Mapping[str, str],
        depends_on: Sequence[ITerraformDependable],
    ) -> None:
        super().__init__(
            scope,
            id,
            {"create_duration": create_duration, "triggers": dict(triggers)},
            depends_on=depends_on,
        )
