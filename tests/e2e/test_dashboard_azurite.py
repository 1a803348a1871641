"""The dashboard's SAS path against a real Azurite: read with read+list, refused to write, expiry.

Azurite speaks plain http, so the SAS here allows `https,http`; everything else (read and list only,
the gold container only, a short lifetime) is what Azure gets. Azurite gets an account whose key is
drawn at run time, and every SAS is signed with it during the test.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient, generate_container_sas
from deltalake import write_deltalake
from streamlit.testing.v1 import AppTest

from pulse.devstack.broker import free_port
from pulse_dashboard.credentials import sign_gold_sas
from pulse_dashboard.gold import GoldProblem, GoldTable, newest_value, read_gold
from testkit.gold_fixture import GoldFixture, write_gold_fixture
from tests.dashboard.conftest import DASHBOARD_VARIABLES

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / "node_modules" / ".bin" / "azurite-blob"
APP = REPO / "dashboard" / "pulse_dashboard" / "app.py"
# Azurite runs with one account whose key is drawn for this run: no key literal in the repository.
ACCOUNT = "pulsegold"
ACCOUNT_KEY = base64.b64encode(os.urandom(64)).decode()
LAKE = "az://gold/lake"


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service with Gold written into its `gold` container."""

    endpoint: str
    fixture: GoldFixture

    def sas(
        self, *, expiry: timedelta = timedelta(minutes=30), container: str = "gold", **perms: bool
    ) -> str:
        """A container SAS signed now with the dev account key (read+list unless told otherwise)."""
        now = datetime.now(UTC)
        if perms:
            from azure.storage.blob import ContainerSasPermissions

            return generate_container_sas(
                ACCOUNT,
                container,
                account_key=ACCOUNT_KEY,
                permission=ContainerSasPermissions(**perms),
                start=now - timedelta(minutes=5),
                expiry=now + expiry,
                protocol="https,http",
            )
        start = now - timedelta(minutes=5) if expiry > timedelta(0) else now + expiry - timedelta(minutes=30)
        token = sign_gold_sas(
            ACCOUNT,
            start=start,
            expiry=now + expiry,
            account_key=ACCOUNT_KEY,
            container=container,
            protocol="https,http",
        )
        return token.value.get_secret_value()

    def options(self, sas: str) -> dict[str, str]:
        return {
            "azure_storage_account_name": ACCOUNT,
            "azure_storage_sas_token": sas,
            "azure_storage_endpoint": self.endpoint,
            "allow_http": "true",
            "max_retries": "1",
        }


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Azurite exited with {process.returncode}: {log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"Azurite did not listen on {port} within {timeout} s: {log.read_text()}")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite (npm) on a free port in a temp folder, with 2 h x 3 videos of Gold in container `gold`."""
    if not AZURITE.exists() or shutil.which("node") is None:
        pytest.skip("Azurite is not installed: run `make setup` (npm ci)")
    folder = tmp_path_factory.mktemp("azurite")
    port = free_port()
    log = folder / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(AZURITE), "--skipApiVersionCheck", "--loose", "--disableTelemetry",
                "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder), "--silent",
            ],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{ACCOUNT_KEY}"},
        )  # fmt: skip
    try:
        _wait_for_port(port, process, log)
        endpoint = f"http://127.0.0.1:{port}/{ACCOUNT}"
        service = BlobServiceClient(
            endpoint, credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
        )
        service.create_container("gold")
        service.create_container("silver")
        admin = {
            "azure_storage_account_name": ACCOUNT,
            "azure_storage_account_key": ACCOUNT_KEY,
            "azure_storage_endpoint": endpoint,
            "allow_http": "true",
        }
        fixture = write_gold_fixture(
            LAKE, now=datetime.now(UTC), hours=2, videos=3, seed=3, storage_options=admin
        )
        yield Azurite(endpoint, fixture)
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def gold(azurite: Azurite, name: str, sas: str, expires: datetime | None = None) -> GoldTable:
    return GoldTable(name, f"{LAKE}/gold/{name}", azurite.options(sas), expires)


def test_reader_reads_gold_with_a_read_list_sas(azurite: Azurite) -> None:
    sas = azurite.sas()
    assert "sp=rl" in sas
    activity = read_gold(gold(azurite, "video_activity", sas))
    assert len(activity) == azurite.fixture.rows["video_activity"] == 120 * 3
    last = azurite.fixture.last_window
    recent = read_gold(gold(azurite, "video_activity", sas), start=last - timedelta(minutes=9), end=last)
    assert len(recent) == 9 * 3
    assert newest_value(gold(azurite, "video_activity", sas)).to_pydatetime() == last + timedelta(minutes=1)
    assert len(read_gold(gold(azurite, "user_sessions", sas))) == azurite.fixture.rows["user_sessions"]


def test_the_same_sas_is_refused_for_writing(azurite: Azurite) -> None:
    sas = azurite.sas()
    container = ContainerClient(azurite.endpoint, "gold", credential=sas)
    before = sorted(blob.name for blob in container.list_blobs())  # listing is allowed
    assert any(name.startswith("lake/gold/video_activity/_delta_log/") for name in before)
    with pytest.raises(HttpResponseError) as refused:
        container.upload_blob("lake/gold/video_activity/intruder.parquet", b"x")
    assert refused.value.status_code == 403
    with pytest.raises(HttpResponseError) as refused_delete:
        container.delete_blob(before[0])
    assert refused_delete.value.status_code == 403
    table = read_gold(gold(azurite, "video_activity", sas)).head(1)
    with pytest.raises(Exception, match="403"):
        write_deltalake(
            f"{LAKE}/gold/video_activity", table, mode="append", storage_options=azurite.options(sas)
        )
    assert sorted(blob.name for blob in container.list_blobs()) == before


def test_an_expired_sas_gives_the_friendly_error(azurite: Azurite) -> None:
    sas = azurite.sas(expiry=-timedelta(minutes=1))
    expires = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(GoldProblem) as caught:
        read_gold(gold(azurite, "video_activity", sas, expires))
    assert caught.value.kind == "expired"
    assert "expired" in caught.value.message
    assert "PULSE_GOLD_SAS_TOKEN" in caught.value.message
    assert sas not in caught.value.message
    assert "sig=" not in caught.value.message


@pytest.mark.parametrize(
    ("label", "container", "perms"),
    [("another container", "silver", {}), ("read without list", "gold", {"read": True})],
)
def test_an_insufficient_sas_is_denied_in_words(
    azurite: Azurite, label: str, container: str, perms: dict[str, bool]
) -> None:
    sas = azurite.sas(container=container, **perms)
    with pytest.raises(GoldProblem) as caught:
        read_gold(gold(azurite, "video_activity", sas))
    assert caught.value.kind == "denied", label
    assert "does not grant read and list on the gold container" in caught.value.message


@pytest.fixture
def app_env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in DASHBOARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULSE_HOME", str(tmp_path))
    monkeypatch.setenv("PULSE_LAKE", LAKE)
    monkeypatch.setenv("PULSE_STORAGE_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("PULSE_STORAGE_ENDPOINT", azurite.endpoint)
    return monkeypatch


def page_text(app: AppTest) -> str:
    parts = [
        str(node.value)
        for kind in ("error", "warning", "caption", "info", "markdown")
        for node in getattr(app, kind)
    ]
    parts += [f"{m.label} {m.value} {m.delta}" for m in app.metric]
    return "\n".join(parts)


def test_dashboard_page_reads_azurite_through_the_sas(azurite: Azurite, app_env: pytest.MonkeyPatch) -> None:
    sas = azurite.sas()
    app_env.setenv("PULSE_GOLD_SAS_TOKEN", sas)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    assert not app.error, [e.value for e in app.error]
    assert len(app.get("vega_lite_chart")) == 4
    assert all(metric.value != "—" for metric in app.metric)
    assert sas not in page_text(app)


def test_dashboard_page_explains_an_expired_sas(azurite: Azurite, app_env: pytest.MonkeyPatch) -> None:
    sas = azurite.sas(expiry=-timedelta(minutes=2))
    app_env.setenv("PULSE_GOLD_SAS_TOKEN", sas)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 3
    assert all("storage token (SAS) for the gold container expired" in e for e in errors)
    assert sas not in page_text(app)
    assert "sig=" not in page_text(app)


def test_dashboard_page_explains_unreachable_storage(azurite: Azurite, app_env: pytest.MonkeyPatch) -> None:
    # The port stays bound, never listening, for the whole run: a connect to it is refused. A port that
    # is merely free can be taken meanwhile by another listener, or picked by the kernel as the source
    # port of one of deltalake's ~30 connects to it (a TCP self-connect), which answers with the request
    # itself instead of a refusal. CI saw one of the two once.
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        app_env.setenv("PULSE_STORAGE_ENDPOINT", f"http://127.0.0.1:{refusing.getsockname()[1]}/{ACCOUNT}")
        app_env.setenv("PULSE_GOLD_SAS_TOKEN", azurite.sas())
        app = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert errors
    # In full, one per line: a list in the message is cut short, which hid the odd one out once.
    other = [e for e in errors if "storage account cannot be reached" not in e]
    assert not other, "\n".join(other)


def test_dashboard_page_refuses_a_write_capable_sas_that_azurite_would_honour(
    azurite: Azurite, app_env: pytest.MonkeyPatch
) -> None:
    sas = azurite.sas(read=True, list=True, write=True, create=True)
    container = ContainerClient(azurite.endpoint, "gold", credential=sas)
    container.upload_blob("probe-of-a-write-sas.txt", b"x")  # the storage honours the extra rights ...
    app_env.setenv("PULSE_GOLD_SAS_TOKEN", sas)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    errors = [e.value for e in app.error]  # ... so the dashboard refuses it before any read
    assert len(errors) == 1
    assert "PULSE_GOLD_SAS_TOKEN is refused: it grants more than read and list" in errors[0]
    assert not app.get("vega_lite_chart")
    assert sas not in page_text(app)
