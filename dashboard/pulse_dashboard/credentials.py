"""Storage credentials of the dashboard: where Gold lives, and the read-only SAS that opens it.

* A local lake needs no credentials.
* In Azure the container app's managed identity (`DefaultAzureCredential`) asks the Blob service for a
  user-delegation key and signs a SAS with it that grants **read and list** on the **gold container**
  only, over **https** only, for at most **one hour**. It is minted again ten minutes before it expires.
* Instead, a SAS may be supplied through `PULSE_GOLD_SAS_TOKEN` (an environment variable, or a Key Vault
  secret reference the container app resolves into one). It is held to the same limits before any use
  (`supplied_sas_fault`): a service SAS on the container or a directory (never an account SAS or a stored
  access policy), read and list only, https only, at most one hour from its start (or from now).

The token is held as a `SecretStr`: it is never logged, never shown, and `redact` strips it from any text
that reaches the page.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from pulse_core.clock import Clock, utc_now
from pulse_dashboard.settings import DashboardSettings

GOLD_CONTAINER = "gold"
SAS_PERMISSION = "rl"
SAS_PROTOCOL = "https"
MAX_SAS_LIFETIME = timedelta(hours=1)
SAS_LIFETIME = timedelta(minutes=55)
REFRESH_BEFORE_EXPIRY = timedelta(minutes=10)
# A SAS that starts exactly now can be refused by a storage node whose clock runs a little behind.
CLOCK_SKEW = timedelta(minutes=5)
# Service SAS scopes (`sr=`) that stay inside the gold container: the container itself, or a directory.
GOLD_SAS_SCOPES = {"c": "the container", "d": "a directory"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class CredentialError(RuntimeError):
    """The dashboard cannot get a credential for the lake. The message says what to fix."""


@dataclass(frozen=True)
class LakeLocation:
    """A parsed lake location.

    Attributes:
        root: The URI parsed: Gold's root (`PulseSettings.layer_root`, which fills in a `{layer}`).
        kind: `local`, `az` or `abfss`.
        container: The blob container (remote lakes only).
        account: The storage account (remote lakes only; `None` when it must come from the settings).
    """

    root: str
    kind: Literal["local", "az", "abfss"]
    container: str | None = None
    account: str | None = None

    @property
    def is_remote(self) -> bool:
        """Whether the lake is in blob storage."""
        return self.kind != "local"


def parse_lake(uri: str) -> LakeLocation:
    """Parse a lake location or table URI: a local path, `az://<container>/…` or
    `abfss://<container>@<account>.dfs.core.windows.net/…`.

    Raises:
        CredentialError: A remote URI without a container, or a scheme the dashboard cannot read.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or re.fullmatch(r"[a-z]", scheme):
        return LakeLocation(root=uri, kind="local")
    if scheme == "az":
        if not parts.netloc:
            raise CredentialError(f"the lake root {uri!r} names no container (az://<container>/…)")
        return LakeLocation(root=uri, kind="az", container=parts.netloc)
    if scheme == "abfss":
        container, _, host = parts.netloc.partition("@")
        if not container or not host:
            raise CredentialError(
                f"expected abfss://<container>@<account>.dfs.core.windows.net/…, got {uri!r}"
            )
        return LakeLocation(root=uri, kind="abfss", container=container, account=host.split(".", 1)[0])
    raise CredentialError(f"the dashboard reads local, az:// or abfss:// lakes, not {scheme}://")


@dataclass(frozen=True)
class SasToken:
    """A SAS token with its expiry. The value is a `SecretStr`, so printing the object shows no secret."""

    value: SecretStr
    expires_on: datetime | None

    def remaining(self, now: datetime) -> timedelta | None:
        """Time left before the token expires (negative once expired), `None` when unknown."""
        return None if self.expires_on is None else self.expires_on - now


def sas_expiry(token: str) -> datetime | None:
    """The `se=` (signed expiry) field of a SAS token, when it has one."""
    values = parse_qs(token.lstrip("?")).get("se")
    if not values:
        return None
    try:
        return datetime.fromisoformat(values[0].replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def gold_sas_permissions() -> Any:
    """Read and list: what the dashboard needs to open a Delta table, and nothing else."""
    from azure.storage.blob import ContainerSasPermissions

    permissions = ContainerSasPermissions(read=True, list=True)
    assert str(permissions) == SAS_PERMISSION
    return permissions


def sign_gold_sas(
    account: str,
    *,
    start: datetime,
    expiry: datetime,
    user_delegation_key: Any = None,
    account_key: str | None = None,
    container: str = GOLD_CONTAINER,
    protocol: str = SAS_PROTOCOL,
) -> SasToken:
    """Sign a read-and-list container SAS for Gold.

    Args:
        account: Storage account name.
        start: Start of validity.
        expiry: End of validity; at most `MAX_SAS_LIFETIME` after `start` plus the clock-skew allowance.
        user_delegation_key: The key from `get_user_delegation_key` (Azure, managed identity).
        account_key: An account key instead (Azurite, tests). Exactly one of the two is required.
        container: The container the SAS opens; Gold's unless a test says otherwise.
        protocol: `https` in Azure; `https,http` only for a local emulator.

    Returns:
        The signed token.

    Raises:
        ValueError: A lifetime over one hour, or not exactly one signing key.
    """
    from azure.storage.blob import generate_container_sas

    if (user_delegation_key is None) == (account_key is None):
        raise ValueError("sign with exactly one of user_delegation_key or account_key")
    if expiry <= start or expiry - start > MAX_SAS_LIFETIME + CLOCK_SKEW:
        raise ValueError("a Gold SAS lives more than zero and at most one hour")
    token = generate_container_sas(
        account,
        container,
        user_delegation_key=user_delegation_key,
        account_key=account_key,
        permission=gold_sas_permissions(),
        start=start,
        expiry=expiry,
        protocol=protocol,
    )
    return SasToken(SecretStr(token), expiry)


def mint_user_delegation_sas(
    account: str,
    *,
    credential: Any = None,
    now: datetime | None = None,
    lifetime: timedelta = SAS_LIFETIME,
    account_url: str | None = None,
) -> SasToken:
    """Mint a user-delegation SAS for the gold container with the managed identity.

    Args:
        account: Storage account name.
        credential: An azure-identity credential; `DefaultAzureCredential()` when omitted.
        now: The current time (passed in by tests).
        lifetime: How long the SAS lives; capped at one hour.
        account_url: Blob endpoint; `https://<account>.blob.core.windows.net` when omitted.

    Returns:
        A token valid from a few minutes ago until `now + lifetime`.

    Raises:
        CredentialError: The identity could not get a delegation key (message without secrets).
    """
    from azure.core.exceptions import AzureError
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    now = now or utc_now()
    lifetime = min(lifetime, MAX_SAS_LIFETIME)
    start, expiry = now - CLOCK_SKEW, now + lifetime
    url = account_url or f"https://{account}.blob.core.windows.net"
    if not url.startswith("https://"):
        raise CredentialError("a user-delegation SAS is only requested over https")
    client = BlobServiceClient(url, credential=credential or DefaultAzureCredential())
    try:
        key = client.get_user_delegation_key(key_start_time=start, key_expiry_time=expiry)
    except AzureError as exc:
        raise CredentialError(
            f"the dashboard's identity could not get a user-delegation key from {account} "
            f"({type(exc).__name__}); it needs the Storage Blob Delegator role"
        ) from None
    return sign_gold_sas(account, start=start, expiry=expiry, user_delegation_key=key)


class SasSource(Protocol):
    """Something that hands out a current Gold SAS."""

    def token(self) -> SasToken:
        """The token to use now."""
        ...


def _sas_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.1f} h"


def supplied_sas_fault(token: str, now: datetime, *, allow_http: bool = False) -> str | None:
    """Why a supplied Gold SAS must not be used, in one line; `None` when it is within the limits.

    The token itself cannot say which container it was signed for (the signature covers the URL it is used
    on, and the dashboard uses it only on gold); what it can say is checked: an account SAS (`ss`/`srt`)
    or a stored access policy (`si`, whose rights live on the server) is refused, and so is a scope other
    than a container or a directory (`sr`), any right beyond read and list (`sp`), plain http allowed
    (`spr`, which defaults to `https,http` when absent) and a lifetime over one hour (`st`..`se`, from
    `now` without `st`).

    Args:
        token: The SAS query string, with or without its leading `?`.
        now: The current time.
        allow_http: Accept `spr=https,http`: only for a local emulator, which speaks plain http.
    """
    fields = {name: values[0] for name, values in parse_qs(token.strip().lstrip("?")).items()}
    if "sig" not in fields:
        return "it is not a SAS token (it has no signature, sig=)"
    if "ss" in fields or "srt" in fields:
        return "it is an account SAS (ss=/srt=), which opens the whole account; supply a gold container SAS"
    if "si" in fields:
        return "it uses a stored access policy (si=), whose rights and expiry the token does not show"
    scope = fields.get("sr")
    if scope not in GOLD_SAS_SCOPES:
        return (
            f"its scope sr={scope or '(none)'} is not the gold container (sr=c) or a directory in it (sr=d)"
        )
    rights = fields.get("sp", "")
    if set(rights) - set(SAS_PERMISSION):
        return f"it grants more than read and list (sp={rights}); the dashboard needs sp=rl"
    if set(rights) != set(SAS_PERMISSION):
        return f"it does not grant both read and list (sp={rights or '(none)'}); the dashboard needs sp=rl"
    protocol = fields.get("spr", "https,http")
    if protocol != SAS_PROTOCOL and not (allow_http and set(protocol.split(",")) == {"https", "http"}):
        return f"it allows plain http (spr={protocol}); sign it for https only (spr=https)"
    expiry = _sas_time(fields.get("se", ""))
    if expiry is None:
        return "it has no readable expiry (se=)"
    start = _sas_time(fields["st"]) if "st" in fields else now
    if start is None:
        return f"its start st={fields['st']} is not a time"
    if expiry - start > MAX_SAS_LIFETIME:
        since = "from st" if "st" in fields else "from now"
        return f"it lives {_hours(expiry - start)} {since} to se=, more than one hour"
    return None


def is_local_emulator(settings: DashboardSettings) -> bool:
    """Whether the storage is a local emulator (Azurite): the only place a SAS may allow plain http."""
    if settings.storage_use_emulator:
        return True
    endpoint = urlsplit(settings.storage_endpoint or "")
    return endpoint.scheme == "http" and (endpoint.hostname or "") in LOOPBACK_HOSTS


def check_supplied_sas(token: SecretStr, settings: DashboardSettings, now: datetime | None = None) -> None:
    """Refuse a `PULSE_GOLD_SAS_TOKEN` beyond read and list on gold, https and one hour.

    Raises:
        CredentialError: One line saying why (never the token).
    """
    fault = supplied_sas_fault(
        token.get_secret_value(), now or utc_now(), allow_http=is_local_emulator(settings)
    )
    if fault is not None:
        raise CredentialError(f"PULSE_GOLD_SAS_TOKEN is refused: {redact(fault, token.get_secret_value())}")


@dataclass
class SuppliedSas:
    """A SAS supplied by the operator (environment variable or secret): used as is, never refreshed."""

    supplied: SecretStr

    def token(self) -> SasToken:
        """The supplied token, with its `se=` expiry when it states one."""
        return SasToken(self.supplied, sas_expiry(self.supplied.get_secret_value()))


@dataclass
class DelegatedSas:
    """User-delegation SAS minted with the managed identity and re-minted before it expires.

    Attributes:
        account: Storage account name.
        mint: Mints a token (`mint_user_delegation_sas` in Azure; tests pass a signer).
        clock: The current time.
        refresh_before: Re-mint when less than this is left.
    """

    account: str
    mint: Callable[[str, datetime], SasToken] = field(
        default=lambda account, now: mint_user_delegation_sas(account, now=now)
    )
    clock: Clock = utc_now
    refresh_before: timedelta = REFRESH_BEFORE_EXPIRY
    _current: SasToken | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def token(self) -> SasToken:
        """The current token, minted again when it is missing or has less than `refresh_before` left."""
        with self._lock:
            now = self.clock()
            left = self._current.remaining(now) if self._current else None
            if self._current is None or left is None or left < self.refresh_before:
                self._current = self.mint(self.account, now)
            return self._current


def sas_source(
    location: LakeLocation, settings: DashboardSettings, now: datetime | None = None
) -> SasSource | None:
    """Pick the credential for a lake: none locally, the supplied SAS (once checked), or a delegated one.

    Raises:
        CredentialError: A remote lake whose account is unknown, or a supplied SAS beyond its limits.
    """
    if not location.is_remote:
        return None
    if settings.gold_sas_token is not None:
        check_supplied_sas(settings.gold_sas_token, settings, now)
        return SuppliedSas(settings.gold_sas_token)
    account = location.account or settings.storage_account
    if not account:
        raise CredentialError("an az:// lake needs PULSE_STORAGE_ACCOUNT (the storage account name)")
    return DelegatedSas(account)


def storage_options(
    location: LakeLocation, settings: DashboardSettings, source: SasSource | None
) -> dict[str, str]:
    """deltalake `storage_options` for reading Gold: empty locally, account and SAS in blob storage.

    Raises:
        CredentialError: A remote lake without an account or a SAS source.
    """
    if not location.is_remote:
        return {}
    account = location.account or settings.storage_account
    if not account or source is None:
        raise CredentialError("a remote lake needs PULSE_STORAGE_ACCOUNT and a SAS")
    options = {
        "azure_storage_account_name": account,
        "azure_storage_sas_token": source.token().value.get_secret_value().lstrip("?"),
        # A broken network should reach the page within seconds, not after minutes of retries.
        "max_retries": "2",
        "retry_timeout": "15s",
        "timeout": "30s",
    }
    if settings.storage_endpoint:
        options["azure_storage_endpoint"] = settings.storage_endpoint
        if settings.storage_endpoint.startswith("http://"):
            options["allow_http"] = "true"
    if settings.storage_use_emulator:
        options["azure_storage_use_emulator"] = "true"
    return options


_SIGNATURE = re.compile(r"(?i)(sig=)[^&\s\"'<>]+")


def redact(text: str, *secrets: str) -> str:
    """`text` with every SAS signature and each of `secrets` replaced by `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SIGNATURE.sub(r"\1***", text)
