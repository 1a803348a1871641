"""`PULSE_GOLD_SAS_TOKEN` is checked before any use: read and list on gold, https only, one hour at most.

Every token is signed during the test with a key drawn at run time (an account key, or a user-delegation
key as the Blob service returns it), with the Azure SDK's own generators: the fields are the real ones.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import (
    AccountSasPermissions,
    BlobSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from pulse_dashboard.credentials import (
    CredentialError,
    SuppliedSas,
    check_supplied_sas,
    parse_lake,
    sas_source,
    sign_gold_sas,
    supplied_sas_fault,
)
from pulse_dashboard.settings import DashboardSettings
from tests.dashboard.test_credentials import delegation_key

ACCOUNT = "pulsedev"
NOW = datetime.now(UTC).replace(microsecond=0)
LAKE = "abfss://gold@pulsedev.dfs.core.windows.net/"


def account_key() -> str:
    return base64.b64encode(os.urandom(64)).decode()


def container_sas(
    permission: str = "rl",
    *,
    start: datetime | None = NOW - timedelta(minutes=5),
    expiry: datetime = NOW + timedelta(minutes=50),
    protocol: str | None = "https",
    **extra: str,
) -> str:
    return generate_container_sas(
        ACCOUNT,
        "gold",
        account_key=account_key(),
        permission=ContainerSasPermissions.from_string(permission),
        start=start,
        expiry=expiry,
        protocol=protocol,
        **extra,
    )


def test_the_dashboards_own_user_delegation_sas_is_accepted() -> None:
    token = sign_gold_sas(
        ACCOUNT,
        start=NOW - timedelta(minutes=5),
        expiry=NOW + timedelta(minutes=55),
        user_delegation_key=delegation_key(NOW),
    )
    assert supplied_sas_fault(token.value.get_secret_value(), NOW) is None
    assert supplied_sas_fault("?" + container_sas(), NOW) is None  # with the leading "?" too


def test_a_directory_sas_inside_gold_is_accepted() -> None:
    token = container_sas().replace("sr=c", "sr=d") + "&sdd=1"
    assert supplied_sas_fault(token, NOW) is None


@pytest.mark.parametrize(
    ("label", "make", "fragment"),
    [
        ("write", lambda: container_sas("rwl"), "more than read and list (sp=rwl)"),
        ("everything", lambda: container_sas("racwdl"), "more than read and list"),
        ("delete", lambda: container_sas("rdl"), "more than read and list"),
        ("read only", lambda: container_sas("r"), "does not grant both read and list"),
        ("http allowed", lambda: container_sas(protocol="https,http"), "allows plain http (spr=https,http)"),
        ("no spr", lambda: container_sas(protocol=None), "allows plain http"),
        (
            "two hours from st",
            lambda: container_sas(start=NOW, expiry=NOW + timedelta(hours=2)),
            "lives 2.0 h from st",
        ),
        (
            "90 min from now, no st",
            lambda: container_sas(start=None, expiry=NOW + timedelta(minutes=90)),
            "lives 1.5 h from now",
        ),
        (
            "started long ago",
            lambda: container_sas(start=NOW - timedelta(days=1), expiry=NOW + timedelta(minutes=10)),
            "more than one hour",
        ),
        (
            "account SAS",
            lambda: generate_account_sas(
                ACCOUNT,
                account_key(),
                ResourceTypes(container=True, object=True),
                AccountSasPermissions(read=True, list=True),
                expiry=NOW + timedelta(minutes=30),
                protocol="https",
            ),
            "account SAS",
        ),
        (
            "stored access policy",
            lambda: generate_container_sas(
                ACCOUNT, "gold", account_key=account_key(), policy_id="readers", protocol="https"
            ),
            "stored access policy (si=)",
        ),
        (
            "blob SAS",
            lambda: generate_blob_sas(
                ACCOUNT,
                "gold",
                "lake/gold/video_activity/_delta_log/00000000000000000000.json",
                account_key=account_key(),
                permission=BlobSasPermissions(read=True),
                expiry=NOW + timedelta(minutes=30),
                protocol="https",
            ),
            "scope sr=b is not the gold container",
        ),
        ("not a SAS", lambda: "sv=2025-07-05&sp=rl", "not a SAS token"),
    ],
)
def test_a_token_beyond_the_limits_is_refused_in_one_line(
    label: str, make: Callable[[], str], fragment: str
) -> None:
    token = make()
    fault = supplied_sas_fault(token, NOW)
    assert fault is not None, label
    assert fragment in fault, (label, fault)
    settings = DashboardSettings(gold_sas_token=SecretStr(token))
    with pytest.raises(CredentialError) as refused:
        sas_source(parse_lake(LAKE), settings, now=NOW)
    message = str(refused.value)
    assert message.startswith("PULSE_GOLD_SAS_TOKEN is refused: ")
    assert "\n" not in message
    signature = token.split("sig=")[-1] if "sig=" in token else None
    assert signature is None or signature not in message


def test_plain_http_is_allowed_only_for_a_local_emulator() -> None:
    token = SecretStr(container_sas(protocol="https,http"))
    for emulator in (
        DashboardSettings(storage_endpoint="http://127.0.0.1:10000/pulsedev"),
        DashboardSettings(storage_endpoint="http://localhost:10000/pulsedev"),
        DashboardSettings(storage_use_emulator=True),
    ):
        check_supplied_sas(token, emulator, NOW)
    for remote in (
        DashboardSettings(),
        DashboardSettings(storage_endpoint="http://pulsedev.blob.core.windows.net"),
        DashboardSettings(storage_endpoint="https://127.0.0.1:10000/pulsedev"),
    ):
        with pytest.raises(CredentialError, match="plain http"):
            check_supplied_sas(token, remote, NOW)
    # An emulator does not relax anything else.
    with pytest.raises(CredentialError, match="more than read and list"):
        check_supplied_sas(SecretStr(container_sas("rwl", protocol="https,http")), emulator, NOW)


def test_a_token_within_the_limits_is_used() -> None:
    token = container_sas()
    source = sas_source(parse_lake(LAKE), DashboardSettings(gold_sas_token=SecretStr(token)), now=NOW)
    assert isinstance(source, SuppliedSas)
    assert source.token().value.get_secret_value() == token


def test_the_page_says_why_a_token_is_refused(dashboard_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = container_sas("racwdl")
    monkeypatch.setenv("PULSE_LAKE", LAKE)
    monkeypatch.setenv("PULSE_GOLD_SAS_TOKEN", token)
    app = AppTest.from_file(
        str(Path(__file__).parents[2] / "dashboard" / "pulse_dashboard" / "app.py"), default_timeout=60
    ).run()
    assert not app.exception, [e.value for e in app.exception]
    errors = [e.value for e in app.error]
    assert len(errors) == 1
    assert "PULSE_GOLD_SAS_TOKEN is refused: it grants more than read and list (sp=racwdl)" in errors[0]
    assert "\n" not in errors[0]
    assert token.split("sig=")[-1] not in errors[0]
    assert not app.get("vega_lite_chart")
