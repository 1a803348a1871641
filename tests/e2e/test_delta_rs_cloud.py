"""delta-rs commits to a cloud lake with the token the Databricks jobs get, against a real Azurite.

On Databricks, the jobs' delta-rs commits authenticate with an Azure token of a Unity Catalog service
credential (`pulse.lake_access`; the job's principal holds ACCESS on it, infra.components.databricks).
What runs here is everything after `dbutils` hands the job its token credential: the bearer token in
delta-rs's storage options, over HTTPS, checked by the storage service (Azurite with `--oauth basic`
validates each token's audience, issuer and lifetime, not its signature), through the same Bronze,
Silver and Gold commits the pipeline makes (`io.append_with_delta_rs`, `GoldUpdate.merge`).

The stand-in for Entra ID mints tokens at run time with a random key; the TLS CA is made per run too.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pyarrow as pa
import pytest
from azure.core.credentials import AccessToken
from deltalake import DeltaTable, write_deltalake

from pulse import io
from pulse.devstack.broker import free_port
from pulse.devstack.tls import new_certificate_authority, server_keystore
from pulse.jobs.medallion import GoldUpdate
from pulse.lake_access import REFRESH_MARGIN_S, STORAGE_SCOPE, DeltaRsAccess
from pulse.tables import GOLD_TABLES
from pulse_core import catalogue

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"  # Azurite's OAuth mode serves its built-in account
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
# The form the jobs' lake URL has (`abfss://<container>@<account>.dfs.core.windows.net`); deltalake 1.1+
# fails a second commit on `az://` paths (delta-io/delta-rs#3824), which Pulse never writes to.
LAKE = f"abfss://lake@{ACCOUNT}.dfs.core.windows.net"
T0 = datetime(2026, 12, 3, 23, 58, tzinfo=UTC)


class EntraStandIn:
    """An Azure token credential, as `dbutils.credentials.getServiceCredentialsProvider` returns: tokens
    for the storage audience, from Entra ID's v1 issuer, living `lifetime` seconds from `now()`."""

    def __init__(self, lifetime: float = 3600, clock: Callable[[], float] = time.time) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self.key = secrets.token_hex(32)
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **_: object) -> AccessToken:
        self.scopes.extend(scopes)
        now = int(self.clock())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{TENANT}/",
            "tid": TENANT,
            "oid": "00000000-0000-0000-0000-00000000j0b5",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + int(self.lifetime),
        }
        return AccessToken(jwt.encode(claims, self.key, algorithm="HS256"), now + int(self.lifetime))


@dataclass(frozen=True)
class SecureAzurite:
    endpoint: str

    def access(self, credential: EntraStandIn, clock=time.time) -> DeltaRsAccess:
        """What the job's writer holds, with the emulator's endpoint (an option Azure does not need)."""
        extra = {"azure_storage_endpoint": self.endpoint, "azure_storage_account_name": ACCOUNT,
                 "max_retries": "1"}  # fmt: skip
        return DeltaRsAccess(credential, extra, clock)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureAzurite]:
    """Azurite over HTTPS with OAuth on, trusting a CA made for this run (delta-rs reads SSL_CERT_FILE)."""
    if not AZURITE.exists() or shutil.which("node") is None:
        pytest.skip("Azurite is not installed: run `make setup` (npm ci)")
    folder = tmp_path_factory.mktemp("azurite-oauth")
    ca_path, ca_cert, ca_key = new_certificate_authority(folder / "tls", "Pulse test CA")
    keystore = folder / "tls" / "server.pem"
    server_keystore(keystore, ca_cert, ca_key)
    port = free_port()
    log = folder / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(AZURITE), "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--oauth", "basic",
                "--cert", str(keystore), "--key", str(keystore),
                "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder / "data"),
            ],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(ca_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"Azurite exited with {process.returncode}: {log.read_text()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"Azurite did not listen on {port}: {log.read_text()}")
            time.sleep(0.2)
        from azure.storage.blob import BlobServiceClient

        endpoint = f"https://127.0.0.1:{port}/{ACCOUNT}"
        service = BlobServiceClient(endpoint, credential=EntraStandIn(), connection_verify=str(ca_path))
        service.create_container("lake")
        yield SecureAzurite(endpoint)
    finally:
        if previous is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = previous
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _create(path: str, table: catalogue.Table, access: DeltaRsAccess, rows: pa.Table | None = None) -> None:
    """A table with the catalogue's schema and properties (and `rows`), as the pipeline creates it."""
    data = rows if rows is not None else table.arrow_schema().empty_table()
    write_deltalake(path, data, configuration=dict(table.properties), storage_options=access.options())


def _sessions(*rows: tuple[str, datetime, datetime, int]) -> pa.Table:
    schema = catalogue.GOLD_USER_SESSIONS.arrow_schema()
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "video_id": ["video_1"] * len(rows),
            "session_start": [r[1] for r in rows],
            "session_end": [r[2] for r in rows],
            "duration_seconds": [(r[2] - r[1]).total_seconds() for r in rows],
            "event_count": [r[3] for r in rows],
            "message_count": [0] * len(rows),
            "ended_by_leave": [False] * len(rows),
        },
        schema=schema,
    )


def test_appends_and_gold_merges_commit_with_the_service_credentials_token(azurite: SecureAzurite) -> None:
    """Each commit the pipeline makes, once per table: Azurite 3.35 fails a table's third commit in
    delta-rs's log listing (the error of delta-io/delta-rs#3824, which ADLS does not show), so no table
    here gets more than two."""
    credential = EntraStandIn()
    access = azurite.access(credential)
    silver, sessions = f"{LAKE}/silver/events", f"{LAKE}/gold/user_sessions"
    _create(silver, catalogue.SILVER_EVENTS, access)
    assert io.delta_rs_refusal(silver, access.options()) is None
    assert credential.scopes
    assert set(credential.scopes) == {STORAGE_SCOPE}

    schema = catalogue.SILVER_EVENTS.arrow_schema()
    events = pa.table({field.name: pa.nulls(2, field.type) for field in schema})
    events = events.set_column(0, "event_id", pa.array(["e1", "e2"]))
    assert io.append_with_delta_rs(
        silver, events, "run-1/batch-0", ("pulse-run-1-silver", 0), access.options()
    )
    # A replayed batch is recognised by the transaction recorded in the cloud table's log.
    assert not io.append_with_delta_rs(
        silver, events, "run-1/batch-0", ("pulse-run-1-silver", 0), access.options()
    )
    assert DeltaTable(silver, storage_options=access.options()).to_pyarrow_table().num_rows == 2

    # Gold as the writer commits it, through the writer's `storage_options`: an upsert and a stale row.
    held = _sessions(("u1", T0, T0 + timedelta(seconds=30), 2), ("u2", T0, T0 + timedelta(seconds=10), 1))
    _create(sessions, catalogue.GOLD_USER_SESSIONS, access, held)
    assert io.delta_rs_refusal(sessions, access.options()) is None
    schema_spark, keys = GOLD_TABLES["user_sessions"]
    prune = io.TimeRange("session_end", T0 - timedelta(minutes=5))
    later = _sessions(("u1", T0, T0 + timedelta(seconds=90), 3))
    stale = _sessions(("u2", T0, T0 + timedelta(seconds=10), 1))
    update = GoldUpdate(sessions, schema_spark, keys, prune, later, stale)
    update.merge(None, "run-1/batch-2", True, lambda _: access.options())  # type: ignore[arg-type]
    table = DeltaTable(sessions, storage_options=access.options())
    rows = table.to_pyarrow_table().to_pylist()
    assert [(r["user_id"], r["event_count"]) for r in rows] == [("u1", 3)]
    assert table.history(1)[0]["userMetadata"] == "run-1/batch-2"
    # The strings are the table's own type, so the common readers can filter them (docs/pipeline.md).
    assert table.to_pyarrow_table(filters=[("video_id", "=", "video_1")]).num_rows == 1


def test_an_expired_token_is_refused_and_the_writer_fetches_a_new_one_first(azurite: SecureAzurite) -> None:
    path = f"{LAKE}/silver/quarantine"
    _create(path, catalogue.SILVER_QUARANTINE, azurite.access(EntraStandIn()))
    # The storage service checks each token: one that has expired cannot even read the log.
    expired = EntraStandIn(lifetime=60, clock=lambda: time.time() - 3600).get_token(STORAGE_SCOPE)
    options = {**azurite.access(EntraStandIn()).extra, "bearer_token": expired.token}
    with pytest.raises(Exception, match=r"(?i)401|403|expired|authenticat|authoriz"):
        DeltaTable(path, storage_options=options).version()

    # A job holds its credential for days: the writer asks for a new token before the old one lapses.
    # The clock starts an hour back, so the first token has lapsed by the storage service's own clock.
    now = [time.time() - 3600]
    credential = EntraStandIn(lifetime=3000, clock=lambda: now[0])
    access = azurite.access(credential, clock=lambda: now[0])
    first = access.options()["bearer_token"]
    assert access.options()["bearer_token"] == first  # cached while valid
    now[0] = time.time()
    second = access.options()["bearer_token"]
    assert second != first
    with pytest.raises(Exception, match=r"(?i)401|403|expired|authenticat|authoriz"):
        DeltaTable(path, storage_options={**access.extra, "bearer_token": first}).version()
    assert DeltaTable(path, storage_options=access.options()).version() == 0


def test_a_credential_handing_out_tokens_about_to_lapse_is_refused_in_words() -> None:
    access = DeltaRsAccess(EntraStandIn(lifetime=REFRESH_MARGIN_S / 2))
    with pytest.raises(RuntimeError, match="too short-lived"):
        access.options()
