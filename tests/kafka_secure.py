"""A real local broker with a SASL_SSL listener (`pulse broker up --sasl-ssl`), shared by the e2e tests and
the infra contract test: one per test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pulse.devstack.broker import free_port, free_port_pair


@dataclass(frozen=True)
class SecureBroker:
    home: Path
    jars: Path
    plain_port: int
    sasl_port: int

    @property
    def tls(self) -> Path:
        return self.home / "kafka" / "tls"

    def account(self, role: str) -> tuple[str, str]:
        entry = json.loads((self.tls / "credentials.json").read_text())[role]
        return entry["key"], entry["secret"]

    def env(self, role: str, **overrides: str) -> dict[str, str]:
        """The environment of a client of `role`: SASL_SSL to the secure listener with its own API key."""
        key, secret = self.account(role)
        base = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        return base | {
            "PULSE_HOME": str(self.home),
            "PULSE_JARS": str(self.jars),
            "PULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.sasl_port}",
            "PULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "PULSE_KAFKA_API_KEY": key,
            "PULSE_KAFKA_API_SECRET": secret,
            "PULSE_KAFKA_SSL_CA_LOCATION": str(self.tls / "ca.pem"),
            **overrides,
        }


def run_with_env(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulse.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def start_secure_broker(home: Path, jars_dir: Path) -> Iterator[SecureBroker]:
    """`pulse broker up --sasl-ssl` in `home` on free ports; stopped when the generator closes."""
    plain = free_port_pair()
    sasl = free_port({plain, plain + 1})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
    env |= {"PULSE_HOME": str(home), "PULSE_JARS": str(jars_dir)}
    started = run_with_env(env, "broker", "up", "--port", str(plain), "--sasl-ssl", "--sasl-port", str(sasl))
    if started.returncode != 0:
        raise RuntimeError(f"pulse broker up --sasl-ssl failed:\n{started.stdout}{started.stderr}")
    assert f"SASL_SSL (PLAIN over TLS) on 127.0.0.1:{sasl}" in started.stdout
    try:
        yield SecureBroker(home, jars_dir, plain, sasl)
    finally:
        run_with_env(env, "broker", "down")
