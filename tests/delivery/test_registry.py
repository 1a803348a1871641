"""``python -m delivery.registry check-public`` against a local registry speaking the token protocol.

Issue 23 defect 6: the Container App pulls the dashboard image without credentials, and a ghcr.io package
starts private. The plan job must stop at once, saying what to do, instead of a roll-out that waits 10
minutes and fails.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.delivery.delivery_testkit import run_module

NAME = "acme/pulse-dashboard"
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"ghcr.io/{NAME}@{DIGEST}"


@contextmanager
def registry(public: bool) -> Iterator[str]:
    """A registry that, like ghcr.io, answers 401 with a Bearer challenge and hands anonymous clients a
    token that reads the manifest only when the package is public."""
    anonymous = secrets.token_urlsafe(16)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/token":
                scope = parse_qs(parts.query).get("scope", [""])[0]
                self._send(200, {"token": anonymous} if scope == f"repository:{NAME}:pull" else {})
            elif parts.path == f"/v2/{NAME}/manifests/{DIGEST}":
                if public and self.headers.get("Authorization") == f"Bearer {anonymous}":
                    self._send(200, {"schemaVersion": 2})
                else:
                    realm = f"http://127.0.0.1:{self.server.server_port}/token"
                    challenge = f'Bearer realm="{realm}",service="ghcr.io",scope="repository:{NAME}:pull"'
                    self._send(401, {"errors": [{"code": "UNAUTHORIZED"}]}, challenge)
            else:
                self._send(404, {"errors": [{"code": "NAME_UNKNOWN"}]})

        def _send(self, status: int, payload: object, challenge: str | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if challenge:
                self.send_header("WWW-Authenticate", challenge)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_public_image_passes() -> None:
    with registry(public=True) as url:
        result = run_module("delivery.registry", "check-public", IMAGE, "--registry-url", url)
    assert result.returncode == 0, result.stderr
    assert "can be pulled anonymously" in result.stderr


def test_a_private_image_stops_the_deploy_with_what_to_do() -> None:
    with registry(public=False) as url:
        result = run_module("delivery.registry", "check-public", IMAGE, "--registry-url", url)
    assert result.returncode == 1
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith(f"error: check-public: {IMAGE} cannot be pulled without credentials (HTTP 401)")
    assert "pulse-dashboard -> Package settings -> Change visibility -> Public" in error


@pytest.mark.parametrize("image", ["pulse-dashboard:latest", f"ghcr.io/{NAME}@sha256:short"])
def test_an_image_that_is_not_a_registry_reference_is_refused(image: str) -> None:
    result = run_module("delivery.registry", "check-public", image)
    assert result.returncode == 1
    assert "is not <registry host>/<name>@sha256:<digest>" in result.stderr
