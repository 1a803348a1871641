"""TLS and SASL material for the local broker's SASL_SSL listener, generated at run time, never committed.

What Confluent Cloud gives a deployment, made locally: a CA and a broker certificate it signed (for
127.0.0.1 and localhost), and one API key/secret pair per service account (the roles of
`infra/components/confluent.py`). The files live in `$PULSE_HOME/kafka/tls/`, private ones mode 0600.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

# The Confluent service accounts Pulse deploys, one API key each (infra/components/confluent.py).
SERVICE_ACCOUNTS = ("producer", "databricks")
_VALID_DAYS = 30


@dataclass(frozen=True)
class SecureMaterial:
    """Where a SASL_SSL listener's material is, and the API keys it accepts."""

    ca: Path  # the CA certificate (PEM) clients trust: PULSE_KAFKA_SSL_CA_LOCATION
    keystore: Path  # the broker's private key and certificate chain (PEM), for Kafka's PEM keystore
    credentials_file: Path
    credentials: dict[str, tuple[str, str]]  # service account → (API key, secret)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def new_certificate_authority(folder: Path, name: str = "Pulse local CA") -> tuple[Path, object, object]:
    """A self-signed CA: writes `<folder>/ca.pem` (and its key, 0600). Returns (path, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        folder / "ca-key.pem",
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return ca_path, cert, key


def server_keystore(path: Path, ca_cert: object, ca_key: object) -> None:
    """A server key and a certificate for 127.0.0.1/localhost signed by the CA, as one PEM file (the local
    broker's keystore; the Azurite that tests delta-rs tokens over HTTPS)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)  # type: ignore[attr-defined]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=_VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM
    )
    _write_private(path, pem + chain)


def _new_api_key() -> tuple[str, str]:
    """A key/secret pair shaped like Confluent's: a 16-character upper-case key, a 64-character secret."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key = "".join(secrets.choice(alphabet) for _ in range(16))
    return key, secrets.token_urlsafe(48)


def secure_material(folder: Path) -> SecureMaterial:
    """The listener's CA, keystore and API keys in `folder`, generated on first use and reused after."""
    ca, keystore, credentials_file = folder / "ca.pem", folder / "broker.pem", folder / "credentials.json"
    if not (ca.exists() and keystore.exists() and (folder / "ca-key.pem").exists()):
        _, ca_cert, ca_key = new_certificate_authority(folder)
        server_keystore(keystore, ca_cert, ca_key)
    if not credentials_file.exists():
        pairs = {account: _new_api_key() for account in SERVICE_ACCOUNTS}
        body = {account: {"key": key, "secret": secret} for account, (key, secret) in pairs.items()}
        _write_private(credentials_file, (json.dumps(body, indent=2) + "\n").encode())
    stored = json.loads(credentials_file.read_text())
    credentials = {account: (entry["key"], entry["secret"]) for account, entry in stored.items()}
    return SecureMaterial(ca, keystore, credentials_file, credentials)


def jaas_config(credentials: dict[str, tuple[str, str]]) -> str:
    """The broker's PLAIN login module line accepting each key/secret pair."""
    users = " ".join(f'user_{key}="{secret}"' for key, secret in credentials.values())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
