"""Settings come from PULSE_* variables, have local defaults, and fail with a message naming the fix."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from pulse_core.settings import PulseSettings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PULSE_ENV", "PULSE_HOME", "PULSE_LAKE", "PULSE_JARS", "PULSE_KAFKA_BOOTSTRAP", "PULSE_KAFKA_TOPIC",
        "PULSE_KAFKA_SECURITY_PROTOCOL", "PULSE_KAFKA_API_KEY", "PULSE_KAFKA_API_SECRET",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def test_local_defaults() -> None:
    settings = load_settings()
    assert settings.env == "local"
    assert settings.home == Path(".pulse")
    assert settings.lake_root == str(Path(".pulse") / "lake")
    assert settings.jars_dir == Path(".pulse") / "jars"
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.kafka_topic == "user-interactions"
    assert settings.kafka_client_config() == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "PLAINTEXT",
    }


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PULSE_HOME", str(tmp_path))
    monkeypatch.setenv("PULSE_KAFKA_TOPIC", "other-topic")
    monkeypatch.setenv("PULSE_KAFKA_BOOTSTRAP", "a:9092, b:9093")
    settings = load_settings()
    assert settings.home == tmp_path
    assert settings.kafka_topic == "other-topic"
    assert settings.kafka_bootstrap == "a:9092,b:9093"
    assert settings.table_path("gold", "video_activity") == f"{tmp_path}/lake/gold/video_activity"
    assert settings.checkpoint_path("silver") == f"{tmp_path}/lake/_checkpoints/silver"


def test_cloud_lake_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_ENV", "dev")
    monkeypatch.setenv("PULSE_LAKE", "abfss://lake@acct.dfs.core.windows.net/")
    settings = load_settings()
    assert (
        settings.table_path("bronze", "events_raw")
        == "abfss://lake@acct.dfs.core.windows.net/bronze/events_raw"
    )


def test_layer_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_ENV", "prod")
    monkeypatch.setenv("PULSE_LAKE", "abfss://{layer}@acct.dfs.core.windows.net")
    settings = load_settings()
    assert (
        settings.table_path("gold", "user_sessions") == "abfss://gold@acct.dfs.core.windows.net/user_sessions"
    )
    assert settings.checkpoint_path("silver") == "abfss://checkpoints@acct.dfs.core.windows.net/silver"


def test_unknown_table_is_refused() -> None:
    with pytest.raises(KeyError, match=r"gold\.nope"):
        load_settings().table_path("gold", "nope")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PULSE_ENV", "qa", "PULSE_ENV"),
        ("PULSE_KAFKA_BOOTSTRAP", "no-port-here", "PULSE_KAFKA_BOOTSTRAP"),
        ("PULSE_KAFKA_TOPIC", "bad topic!", "PULSE_KAFKA_TOPIC"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings()


def test_cloud_environment_needs_a_lake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_ENV", "prod")
    with pytest.raises(SettingsError, match="PULSE_LAKE"):
        load_settings()


def test_sasl_needs_credentials_and_keeps_them_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(SettingsError, match="PULSE_KAFKA_API_KEY"):
        load_settings()

    key, secret = secrets.token_hex(8), secrets.token_urlsafe(24)
    monkeypatch.setenv("PULSE_KAFKA_API_KEY", key)
    monkeypatch.setenv("PULSE_KAFKA_API_SECRET", secret)
    settings = load_settings()
    assert secret not in repr(settings)
    assert secret not in str(settings.model_dump())
    config = settings.kafka_client_config()
    assert config["sasl.username"] == key
    assert config["sasl.password"] == secret
    assert config["security.protocol"] == "SASL_SSL"


def test_settings_are_immutable() -> None:
    settings = PulseSettings()
    with pytest.raises(ValueError, match="frozen"):
        settings.kafka_topic = "x"  # type: ignore[misc]


def test_producer_and_spark_get_the_same_security_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = secrets.token_hex(8), secrets.token_urlsafe(24)
    monkeypatch.setenv("PULSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PULSE_KAFKA_API_KEY", key)
    monkeypatch.setenv("PULSE_KAFKA_API_SECRET", secret)
    monkeypatch.setenv("PULSE_KAFKA_SSL_CA_LOCATION", "/etc/pulse/ca.pem")
    settings = load_settings()
    client, spark = settings.kafka_client_config(), settings.kafka_spark_options()
    assert client["ssl.ca.location"] == spark["kafka.ssl.truststore.location"] == "/etc/pulse/ca.pem"
    assert spark["kafka.ssl.truststore.type"] == "PEM"
    assert client["sasl.mechanisms"] == spark["kafka.sasl.mechanism"] == "PLAIN"
    assert f'username="{key}" password="{secret}"' in spark["kafka.sasl.jaas.config"]
    assert spark["kafka.sasl.jaas.config"].startswith("org.apache.kafka.common.security.plain.")
    assert settings.kafka_spark_options(databricks=True)["kafka.sasl.jaas.config"].startswith("kafkashaded.")

    monkeypatch.setenv("PULSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    assert "ScramLoginModule" in load_settings().kafka_spark_options()["kafka.sasl.jaas.config"]
    # Confluent Cloud's certificate chains to a public CA: no CA file, the system trust store.
    monkeypatch.setenv("PULSE_KAFKA_SSL_CA_LOCATION", "")
    assert "ssl.ca.location" not in load_settings().kafka_client_config()
    assert "kafka.ssl.truststore.location" not in load_settings().kafka_spark_options()


def test_progress_log_is_a_file_and_blank_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_PROGRESS_LOG", "/tmp/pulse/progress.jsonl")
    assert load_settings().progress_log == Path("/tmp/pulse/progress.jsonl")
    monkeypatch.setenv("PULSE_PROGRESS_LOG", " ")
    assert load_settings().progress_log is None
    monkeypatch.delenv("PULSE_PROGRESS_LOG")
    assert load_settings().progress_log is None
