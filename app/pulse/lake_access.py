"""How delta-rs reaches a cloud lake: short-lived Azure tokens from a Unity Catalog service credential.

On Databricks, Unity Catalog hands storage credentials to Spark only: a library on the driver, such as
delta-rs, has none. A *service credential* is Unity Catalog's supported way to give job code a cloud
credential of its own: the job's principal holds `ACCESS` on it, and `dbutils` returns an Azure token
credential for it (Databricks Runtime 16.2+). The infrastructure wraps a managed identity that may write
only the lake's layer containers (`infra.components.databricks`), and the jobs name it in
`PULSE_DELTA_RS_CREDENTIAL`.

`DeltaRsAccess` turns any Azure token credential into delta-rs `storage_options`, fetching a new token
before the current one expires: a streaming job runs for days, a token lives about an hour.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pulse.spark import on_databricks
from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.lake_access")
# The audience of a token for Azure Storage (blobs and ADLS Gen2).
STORAGE_SCOPE = "https://storage.azure.com/.default"
# A token is replaced this long before it expires, so no commit starts with one about to lapse.
REFRESH_MARGIN_S = 300.0


class AccessTokenLike(Protocol):
    token: str
    expires_on: int


class TokenCredential(Protocol):
    """An Azure token credential (`azure.core.credentials.TokenCredential`): what `dbutils` returns for a
    service credential, and what every `azure-identity` credential is."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike: ...


class DeltaRsAccess:
    """delta-rs `storage_options` for a cloud lake, authenticated with a token from `credential`.

    Args:
        credential: where tokens come from.
        extra: further delta-rs storage options (an emulator's endpoint, say); never a secret.
        clock: seconds since the epoch; tests pass their own.
    """

    def __init__(
        self,
        credential: TokenCredential,
        extra: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.credential = credential
        self.extra = dict(extra or {})
        self.clock = clock
        self._token: AccessTokenLike | None = None
        self._lock = threading.Lock()  # the Gold commits of a batch run on several threads

    def options(self) -> dict[str, str]:
        """The storage options for one delta-rs call: a token valid for at least `REFRESH_MARGIN_S`."""
        with self._lock:
            if self._token is None or self._token.expires_on - self.clock() < REFRESH_MARGIN_S:
                token = self.credential.get_token(STORAGE_SCOPE)
                left = token.expires_on - self.clock()
                if left < REFRESH_MARGIN_S:
                    raise RuntimeError(
                        f"the storage token delta-rs was given expires in {left:.0f} s: the credential hands "
                        "out tokens too short-lived to commit with"
                    )
                self._token = token
                log.info(f"delta-rs: a new storage token, valid until {time.ctime(token.expires_on)}")
            return {**self.extra, "bearer_token": self._token.token}


def service_credential(name: str) -> TokenCredential:
    """The Unity Catalog service credential `name`, as an Azure token credential (Databricks only)."""
    try:
        from databricks.sdk.runtime import dbutils  # type: ignore[import-not-found]
    except Exception as error:  # off Databricks the import fails to find workspace credentials
        raise RuntimeError(
            f"PULSE_DELTA_RS_CREDENTIAL={name}: this Databricks runtime has no dbutils for Python "
            "(databricks-sdk); service credentials need Databricks Runtime 16.2 or later"
        ) from error
    try:
        return dbutils.credentials.getServiceCredentialsProvider(name)  # type: ignore[no-any-return,call-arg]
    except Exception as error:
        raise RuntimeError(
            f"PULSE_DELTA_RS_CREDENTIAL={name}: Unity Catalog refused the service credential ({error}). "
            "The job's principal needs ACCESS on it (infra.components.databricks grants it), and the "
            "runtime must be 16.2 or later."
        ) from error


def delta_rs_access(settings: PulseSettings) -> DeltaRsAccess | None:
    """How this run's delta-rs commits authenticate to a cloud lake, or None to use the environment's
    Azure credentials (and nothing at all on a local lake)."""
    name = settings.delta_rs_credential
    if name is None:
        return None
    if not on_databricks():
        raise RuntimeError(
            f"PULSE_DELTA_RS_CREDENTIAL={name} names a Unity Catalog service credential, which only a "
            "Databricks job can use. Off Databricks, unset it and give delta-rs Azure credentials through "
            "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID."
        )
    return DeltaRsAccess(service_credential(name))
