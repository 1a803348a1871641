"""The credentials module: lake parsing, the SAS's scope and lifetime, refresh, and redaction."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
from azure.storage.blob import UserDelegationKey
from pydantic import SecretStr

from pulse_core.settings import PulseSettings
from pulse_dashboard.credentials import (
    MAX_SAS_LIFETIME,
    CredentialError,
    DelegatedSas,
    SasToken,
    SuppliedSas,
    mint_user_delegation_sas,
    parse_lake,
    redact,
    sas_source,
    sign_gold_sas,
    storage_options,
)
from pulse_dashboard.settings import DashboardSettings

NOW = datetime(2025, 7, 13, 12, 0, tzinfo=UTC)


def delegation_key(now: datetime = NOW) -> UserDelegationKey:
    """A user-delegation key as the Blob service returns it, with a random signing secret."""
    key = UserDelegationKey()
    key.signed_oid = "00000000-0000-0000-0000-000000000001"
    key.signed_tid = "00000000-0000-0000-0000-000000000002"
    key.signed_start = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key.signed_expiry = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key.signed_service = "b"
    key.signed_version = "2025-07-05"
    key.value = base64.b64encode(os.urandom(32)).decode()
    return key


def fields(token: SasToken) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(token.value.get_secret_value()).items()}


def test_user_delegation_sas_is_read_list_gold_https_and_short() -> None:
    token = sign_gold_sas(
        "pulsedev",
        start=NOW - timedelta(minutes=5),
        expiry=NOW + timedelta(minutes=55),
        user_delegation_key=delegation_key(),
    )
    sas = fields(token)
    assert sas["sp"] == "rl"
    assert sas["sr"] == "c"  # container scope
    assert sas["spr"] == "https"
    assert "skoid" in sas
    assert "sig" in sas
    expiry = datetime.fromisoformat(sas["se"].replace("Z", "+00:00"))
    start = datetime.fromisoformat(sas["st"].replace("Z", "+00:00"))
    assert expiry - NOW <= MAX_SAS_LIFETIME
    assert expiry - start <= MAX_SAS_LIFETIME
    assert token.expires_on == NOW + timedelta(minutes=55)


def test_a_sas_longer_than_an_hour_is_refused() -> None:
    with pytest.raises(ValueError, match="at most one hour"):
        sign_gold_sas(
            "pulsedev", start=NOW, expiry=NOW + timedelta(hours=2), user_delegation_key=delegation_key()
        )


def test_minting_only_over_https() -> None:
    with pytest.raises(CredentialError, match="https"):
        mint_user_delegation_sas("pulsedev", credential=object(), account_url="http://127.0.0.1:1/pulsedev")


def test_delegated_sas_is_minted_again_before_it_expires() -> None:
    clock = [NOW]
    minted: list[datetime] = []

    def mint(account: str, now: datetime) -> SasToken:
        minted.append(now)
        return sign_gold_sas(
            account,
            start=now - timedelta(minutes=5),
            expiry=now + timedelta(minutes=55),
            user_delegation_key=delegation_key(now),
        )

    source = DelegatedSas("pulsedev", mint=mint, clock=lambda: clock[0])
    first = source.token()
    clock[0] = NOW + timedelta(minutes=44)  # 11 min left: keep
    assert source.token() is first
    clock[0] = NOW + timedelta(minutes=46)  # 9 min left: mint again, before expiry
    second = source.token()
    assert second is not first
    assert minted == [NOW, NOW + timedelta(minutes=46)]
    assert second.expires_on is not None
    assert second.expires_on > clock[0] + timedelta(minutes=50)


def test_supplied_sas_reports_its_expiry_and_is_never_printed() -> None:
    token = sign_gold_sas(
        "pulsedev",
        start=NOW,
        expiry=NOW + timedelta(minutes=30),
        account_key=base64.b64encode(os.urandom(64)).decode(),
    )
    secret = token.value.get_secret_value()
    supplied = SuppliedSas(SecretStr(secret)).token()
    assert supplied.expires_on == NOW + timedelta(minutes=30)
    assert secret not in repr(supplied)
    assert secret not in str(supplied)


@pytest.mark.parametrize(
    ("uri", "kind", "container", "account"),
    [
        ("/data/lake", "local", None, None),
        (".pulse/lake", "local", None, None),
        ("az://gold/lake", "az", "gold", None),
        ("abfss://gold@pulsedev.dfs.core.windows.net/", "abfss", "gold", "pulsedev"),
    ],
)
def test_parse_lake(uri: str, kind: str, container: str | None, account: str | None) -> None:
    location = parse_lake(uri)
    assert (location.kind, location.container, location.account) == (kind, container, account)


def test_parse_lake_refuses_other_schemes() -> None:
    with pytest.raises(CredentialError):
        parse_lake("s3://bucket/lake")


def test_a_lake_with_one_container_per_layer_reads_gold_from_the_gold_container() -> None:
    settings = PulseSettings(env="dev", lake="abfss://{layer}@pulsedev.dfs.core.windows.net")
    uri = settings.table_path("gold", "video_activity")
    assert uri == "abfss://gold@pulsedev.dfs.core.windows.net/video_activity"
    for location in (parse_lake(uri), parse_lake(settings.layer_root("gold"))):
        assert (location.kind, location.container, location.account) == ("abfss", "gold", "pulsedev")
    assert PulseSettings(lake="/x/lake").table_path("gold", "user_sessions") == "/x/lake/gold/user_sessions"


def test_local_lake_needs_no_credentials() -> None:
    location = parse_lake("/x/lake")
    assert sas_source(location, DashboardSettings()) is None
    assert storage_options(location, DashboardSettings(), None) == {}


def test_remote_options_carry_the_supplied_sas(monkeypatch: pytest.MonkeyPatch) -> None:
    token = sign_gold_sas(
        "pulsedev",
        start=NOW,
        expiry=NOW + timedelta(minutes=30),
        account_key=base64.b64encode(os.urandom(64)).decode(),
    )
    monkeypatch.setenv("PULSE_GOLD_SAS_TOKEN", "?" + token.value.get_secret_value())
    settings = DashboardSettings()
    location = parse_lake("abfss://gold@pulsedev.dfs.core.windows.net/")
    source = sas_source(location, settings)
    assert isinstance(source, SuppliedSas)
    options = storage_options(location, settings, source)
    assert options["azure_storage_account_name"] == "pulsedev"
    assert options["azure_storage_sas_token"] == token.value.get_secret_value()
    assert "allow_http" not in options
    assert token.value.get_secret_value() not in repr(settings)


def test_az_lake_without_account_is_a_clear_error() -> None:
    with pytest.raises(CredentialError, match="PULSE_STORAGE_ACCOUNT"):
        sas_source(parse_lake("az://gold/lake"), DashboardSettings())


def test_delegated_source_when_no_sas_is_supplied() -> None:
    source = sas_source(parse_lake("az://gold/lake"), DashboardSettings(storage_account="pulsedev"))
    assert isinstance(source, DelegatedSas)
    assert source.account == "pulsedev"


def test_redact_removes_signatures_and_given_secrets() -> None:
    signature = base64.b64encode(os.urandom(24)).decode()
    text = (
        f"GET https://a.blob.core.windows.net/gold/x?sv=2025-07-05&sig={signature}&se=1 failed; {signature}"
    )
    cleaned = redact(text, signature)
    assert signature not in cleaned
    assert "sig=***" in cleaned
