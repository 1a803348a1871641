"""How delta-rs authenticates to a cloud lake (`pulse.lake_access`): the settings' rules and the token
cache. The commits themselves run against Azurite in tests/e2e/test_delta_rs_cloud.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from pulse.lake_access import REFRESH_MARGIN_S, STORAGE_SCOPE, DeltaRsAccess, delta_rs_access
from pulse_core.settings import PulseSettings


@dataclass
class Token:
    token: str
    expires_on: int


class CountingCredential:
    """Hands out numbered tokens living `lifetime` seconds from the shared clock."""

    def __init__(self, clock: list[float], lifetime: int = 3600) -> None:
        self.clock, self.lifetime, self.calls = clock, lifetime, []

    def get_token(self, *scopes: str, **_: object) -> Token:
        self.calls.append(scopes)
        return Token(f"token-{len(self.calls)}", int(self.clock[0]) + self.lifetime)


def test_a_token_is_reused_until_it_nears_expiry_then_replaced() -> None:
    clock = [1_000_000.0]
    credential = CountingCredential(clock)
    access = DeltaRsAccess(credential, {"azure_storage_account_name": "lake"}, lambda: clock[0])
    assert access.options() == {"azure_storage_account_name": "lake", "bearer_token": "token-1"}
    clock[0] += 3600 - REFRESH_MARGIN_S - 1
    assert access.options()["bearer_token"] == "token-1"  # noqa: S105 - a stand-in's counter, no secret
    clock[0] += 2
    assert access.options()["bearer_token"] == "token-2"  # noqa: S105
    assert credential.calls == [(STORAGE_SCOPE,), (STORAGE_SCOPE,)]


def test_tokens_too_short_lived_to_commit_with_are_refused() -> None:
    clock = [0.0]
    access = DeltaRsAccess(CountingCredential(clock, lifetime=60), clock=lambda: clock[0])
    with pytest.raises(RuntimeError, match="too short-lived"):
        access.options()


def test_no_credential_means_the_environment_s_azure_credentials() -> None:
    assert delta_rs_access(PulseSettings(gold_writer="delta-rs")) is None
    assert PulseSettings(delta_rs_credential="  ").delta_rs_credential is None


def test_a_service_credential_off_databricks_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    settings = PulseSettings(gold_writer="delta-rs", delta_rs_credential="pulse_lake_commits_dev")
    with pytest.raises(RuntimeError, match=r"only a Databricks job can use.*AZURE_CLIENT_ID"):
        delta_rs_access(settings)


def test_a_credential_with_the_spark_writer_is_refused_in_words() -> None:
    with pytest.raises(ValidationError, match="PULSE_GOLD_WRITER=spark commits everything with Spark"):
        PulseSettings(gold_writer="spark", delta_rs_credential="pulse_lake_commits_dev")
