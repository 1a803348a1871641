"""Secrets: the synthesized JSON holds no secret literal; credentials are sensitive vars or references."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from infra_testkit import KEY_VAULT_SECRET, SynthesizedStack

from infra.variables import SENSITIVE_VARIABLES

# Shapes of real credentials. A match anywhere in a synthesized stack is a leak.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "storage account key": re.compile(r"[A-Za-z0-9+/]{86}=="),
    "connection string key": re.compile(r"(?i)(AccountKey|SharedAccessKey|Password)=[^;\s]+"),
    "SAS token": re.compile(r"(?i)\bsig=[A-Za-z0-9%+/=]{20,}"),
    "SAS version parameter": re.compile(r"(?i)[?&]sv=\d{4}-\d{2}-\d{2}&"),
    "Confluent API secret": re.compile(r"\b[A-Za-z0-9+/]{64}\b"),
    "Confluent API key": re.compile(r"\b[A-Z0-9]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),
    "Databricks token": re.compile(r"\bdapi[0-9a-f]{32}\b"),
}
# Attribute names whose value must be a reference (``${...}`` or Databricks ``{{secrets/...}}``), not text.
SECRET_KEYS = re.compile(r"(?i)(secret|password|token|api_key|access_key|client_secret|sas)$")
REFERENCE = re.compile(r"^(\$\{[^}]+\}|\{\{secrets/(\$\{[^}]+\}|[\w.-]+)/[\w.-]+\}\})$")


def find_secret_literals(text: str) -> list[str]:
    """Names of the credential shapes found in ``text``."""
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def secret_valued_attributes(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yields ``(path, value)`` of every attribute whose name says it holds a secret."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            if SECRET_KEYS.search(key) and not isinstance(value, dict | list):
                yield child, value
            yield from secret_valued_attributes(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from secret_valued_attributes(value, f"{path}[{index}]")


def test_no_secret_literal_in_synthesized_json(stack: SynthesizedStack) -> None:
    assert find_secret_literals(stack.text) == []


def test_secret_attributes_hold_references_only(stack: SynthesizedStack) -> None:
    found = dict(
        secret_valued_attributes({"provider": stack.doc["provider"], "resource": stack.doc["resource"]})
    )
    assert found, "expected credential attributes (Confluent provider, topic and ACL credentials)"
    literals = {path: value for path, value in found.items() if not REFERENCE.match(str(value))}
    assert literals == {}


def test_key_vault_secret_values_are_references(stack: SynthesizedStack) -> None:
    secrets = stack.arm_resources(KEY_VAULT_SECRET).values()
    values = [secret["sensitive_body"]["properties"]["value"] for secret in secrets]
    assert len(values) == 4
    assert all(REFERENCE.match(value) for value in values)


def test_credential_variables_are_sensitive_without_defaults(stack: SynthesizedStack) -> None:
    variables = stack.doc["variable"]
    for name in SENSITIVE_VARIABLES:
        assert variables[name]["sensitive"] is True
        assert "default" not in variables[name]
    insensitive = {name for name, spec in variables.items() if not spec.get("sensitive")}
    assert not {name for name in insensitive if SECRET_KEYS.search(name)}


def test_spark_env_reads_kafka_credentials_from_the_secret_scope(stack: SynthesizedStack) -> None:
    scope = re.escape(stack.config.secret_scope_name)
    for job in stack.resources("databricks_job").values():
        env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
        for name in ("PULSE_KAFKA_API_KEY", "PULSE_KAFKA_API_SECRET"):
            assert re.fullmatch(rf"\{{\{{secrets/{scope}/[\w-]+\}}\}}", env_vars[name])


def _job_environment(
    env_vars: dict[str, str], monkeypatch: pytest.MonkeyPatch, key: str, secret: str, bootstrap: str
) -> None:
    """Export a synthesized job's environment as Databricks would, its references filled in."""
    for name in [n for n in os.environ if n.startswith("PULSE_")]:
        monkeypatch.delenv(name)
    for name, value in env_vars.items():
        if value.startswith("{{secrets/"):  # resolved by Databricks at cluster start
            value = key if name.endswith("_KEY") else secret
        # Terraform fills these from other resources at apply time.
        value = re.sub(r"SASL_SSL://", "", value)
        value = re.sub(r"\$\{[^}]+\}", bootstrap if name == "PULSE_KAFKA_BOOTSTRAP" else "account", value)
        monkeypatch.setenv(name, value)


def test_job_environment_makes_confluent_settings(
    stack: SynthesizedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every job's environment, with its references filled in, gives settings that speak SASL_SSL."""
    from pulse.io import KafkaSource
    from pulse_core.settings import load_settings

    for job in stack.resources("databricks_job").values():
        key = f"key-{secrets.token_hex(4)}"
        bootstrap = "pkc-test.westeurope.azure.confluent.cloud:9092"
        env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
        _job_environment(env_vars, monkeypatch, key, secrets.token_urlsafe(16), bootstrap)
        settings = load_settings()
        assert settings.kafka_security_protocol == "SASL_SSL"
        options = KafkaSource.from_settings(settings).options
        assert options["kafka.security.protocol"] == "SASL_SSL"
        assert f'username="{key}"' in options["kafka.sasl.jaas.config"]


def test_job_environment_connects_to_a_sasl_ssl_broker(
    stack: SynthesizedStack, secure_broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Contract: each job's own environment, with the Databricks account's key and secret, reaches a real
    SASL_SSL broker (the local one, whose CA stands in for Confluent's public one)."""
    from pulse.preflight import check_kafka
    from pulse_core.settings import load_settings

    key, secret = secure_broker.account("databricks")
    for job in stack.resources("databricks_job").values():
        env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
        _job_environment(env_vars, monkeypatch, key, secret, f"127.0.0.1:{secure_broker.sasl_port}")
        monkeypatch.setenv("PULSE_KAFKA_SSL_CA_LOCATION", str(secure_broker.tls / "ca.pem"))
        topics = check_kafka(load_settings())
        assert load_settings().kafka_topic in topics


@pytest.mark.parametrize(
    "leak",
    [
        "sv=2024-11-04&ss=b&sig=" + "Q" * 43 + "%3D",
        "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=" + "k" * 86 + "==",
        "A1B2C3D4E5F6G7H8",
        "-----BEGIN RSA " + "PRIVATE KEY-----",
    ],
)
def test_scanner_catches_planted_literals(leak: str) -> None:
    assert find_secret_literals(f'{{"value": "{leak}"}}') != []


def test_attribute_check_catches_a_literal_secret() -> None:
    planted = {"provider": {"confluent": [{"cloud_api_secret": "plain" + "text"}]}}
    assert dict(secret_valued_attributes(planted)) == {"provider.confluent[0].cloud_api_secret": "plaintext"}
    assert not REFERENCE.match("plaintext")
