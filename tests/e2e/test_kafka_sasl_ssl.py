"""Kafka over SASL_SSL (PLAIN over TLS), as Confluent Cloud speaks it, against a real local broker.

`pulse broker up --sasl-ssl` generates a CA, a broker certificate and one API key per service account at
run time. The producer speaks with the producer account, the pipeline with the Databricks job's, each
through the settings a deployment sets (`PULSE_KAFKA_SECURITY_PROTOCOL`, key, secret; plus the local CA,
which Confluent Cloud does not need). Misconfigurations stop with one line naming what to fix.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pulse.devstack.tls import new_certificate_authority
from tests.kafka_secure import SecureBroker, run_with_env

pytestmark = pytest.mark.e2e
EVENTS = 1500


def test_generated_material_is_private_and_unique(secure_broker: SecureBroker) -> None:
    tls = secure_broker.tls
    for private in ("ca-key.pem", "broker.pem", "credentials.json"):
        assert (tls / private).stat().st_mode & 0o077 == 0, private
    producer, databricks = secure_broker.account("producer"), secure_broker.account("databricks")
    assert producer[0] != databricks[0]
    assert producer[1] != databricks[1]
    assert len(producer[1]) >= 32


def test_producer_to_gold_over_sasl_ssl(secure_broker: SecureBroker) -> None:
    """Producer → Bronze → Silver → Gold through the secure listener, each with its own service account."""
    produced = run_with_env(
        secure_broker.env("producer"), "produce", "--events", str(EVENTS), "--rate", "0", "--seed", "3"
    )
    assert produced.returncode == 0, produced.stdout + produced.stderr
    assert f"{EVENTS:,} delivered, 0 failed" in produced.stdout

    lake = secure_broker.home / "lake"
    piped = run_with_env(secure_broker.env("databricks", PULSE_LAKE=str(lake)), "pipeline", "all", "--once")
    assert piped.returncode == 0, piped.stdout[-3000:] + piped.stderr[-3000:]
    bronze = DeltaTable(str(lake / "bronze" / "events_raw")).to_pyarrow_table()
    silver = DeltaTable(str(lake / "silver" / "events")).to_pyarrow_table()
    assert bronze.num_rows == EVENTS
    assert silver.num_rows == EVENTS
    counted = DeltaTable(str(lake / "gold" / "events_by_type")).to_pyarrow_table()
    assert sum(counted.column("event_count").to_pylist()) == EVENTS


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the broker's certificate."""
    path, _, _ = new_certificate_authority(tmp_path_factory.mktemp("other-ca"), "Someone else's CA")
    return path


@pytest.mark.parametrize(
    ("case", "hint"),
    [
        ("wrong secret", "rejected the API key or secret"),
        ("plaintext to the SASL_SSL listener", "is PLAINTEXT. Set it to SASL_SSL"),
        ("untrusted certificate", "set PULSE_KAFKA_SSL_CA_LOCATION"),
        ("SASL_SSL to the PLAINTEXT listener", "does not speak TLS on that port"),
    ],
)
def test_misconfiguration_stops_with_one_line(
    secure_broker: SecureBroker, foreign_ca: Path, case: str, hint: str
) -> None:
    overrides = {
        "wrong secret": {"PULSE_KAFKA_API_SECRET": "not-the-secret"},
        "plaintext to the SASL_SSL listener": {"PULSE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        "untrusted certificate": {"PULSE_KAFKA_SSL_CA_LOCATION": str(foreign_ca)},
        "SASL_SSL to the PLAINTEXT listener": {
            "PULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{secure_broker.plain_port}"
        },
    }[case]
    began = time.monotonic()
    done = run_with_env(secure_broker.env("producer", **overrides), "produce", "--events", "1", timeout=60)
    assert time.monotonic() - began < 45, "no silent hang"
    assert done.returncode == 1
    output = (done.stdout + done.stderr).strip()
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert hint in lines[0]
