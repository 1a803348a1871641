"""Dashboard settings, read from `PULSE_*` environment variables on top of the shared `PulseSettings`."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    """What only the dashboard needs. Field `x` is read from the environment variable `PULSE_X`."""

    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore", frozen=True)

    dashboard_refresh_seconds: float = Field(
        default=10.0, ge=1.0, le=3600.0, description="Default auto-refresh interval of the live view."
    )
    dashboard_cache_ttl_seconds: float = Field(
        default=5.0, ge=0.0, le=3600.0, description="How long a Gold read is served from cache."
    )
    dashboard_stale_after_seconds: float = Field(
        default=120.0, gt=0.0, description="Data older than this is flagged as stale."
    )
    storage_account: str | None = Field(
        default=None, description="ADLS Gen2 account of the lake (needed for az:// roots)."
    )
    gold_sas_token: SecretStr | None = Field(
        default=None,
        description="A SAS for the gold container, used instead of one minted with the managed identity.",
    )
    storage_endpoint: str | None = Field(
        default=None, description="Blob endpoint override, e.g. Azurite's http://127.0.0.1:10000/<account>."
    )
    storage_use_emulator: bool = Field(default=False, description="Talk to Azurite instead of Azure.")


def load_dashboard_settings() -> DashboardSettings:
    """Read the dashboard settings from the environment."""
    return DashboardSettings()
