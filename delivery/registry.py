"""Checks that the dashboard image can be pulled without credentials, as the Container App pulls it.

The Container App has no ``registry`` block: it pulls the image anonymously. A package pushed to ghcr.io
starts private, and then the app's new revision never starts and the roll-out fails after 10 minutes. The
plan job runs this before anything changes, so a private image stops the deploy at once with what to do.
It speaks the registry's own protocol (OCI distribution, anonymous bearer token), with the standard
library only.

Usage::

    python -m delivery.registry check-public ghcr.io/<owner>/pulse-dashboard@sha256:<digest>
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from delivery.report import report_failure

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
TIMEOUT_SECONDS = 30.0
MAKE_PUBLIC = (
    "the Container App pulls without credentials, so make the package public once: GitHub -> your "
    "profile or organization -> Packages -> {name} -> Package settings -> Change visibility -> Public "
    "(docs/delivery.md, 'The registry')"
)


class RegistryError(RuntimeError):
    """The image cannot be pulled anonymously; the message says why and what to do."""


@dataclass(frozen=True)
class ImageRef:
    """``host/name@reference`` (or ``:tag``)."""

    host: str
    name: str
    reference: str

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        match = re.fullmatch(r"([^/]+\.[^/]+)/([a-z0-9._/-]+)(?:@(sha256:[0-9a-f]{64})|:([\w.-]+))", image)
        if match is None:
            raise RegistryError(f"{image} is not <registry host>/<name>@sha256:<digest> (or :<tag>)")
        return cls(match[1], match[2], match[3] or match[4])


def _request(url: str, token: str | None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept": MANIFEST_TYPES}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise RegistryError(f"{url} is not an http(s) URL")
    request = urllib.request.Request(url, headers=headers, method=method)  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - checked
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _challenge(header: str) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` challenge."""
    if not header.lower().startswith("bearer "):
        raise RegistryError(
            f"the registry asks for {header.split(' ')[0] or 'no'} authentication, not a token"
        )
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def _anonymous_token(challenge: dict[str, str]) -> str | None:
    params = {k: v for k, v in challenge.items() if k in ("service", "scope")}
    url = f"{challenge['realm']}?{urllib.parse.urlencode(params)}"
    status, _, body = _request(url, None)
    if status != 200:
        return None
    payload = json.loads(body or b"{}")
    return payload.get("token") or payload.get("access_token")


def check_public(image: str, base_url: str | None = None) -> str:
    """Fetches the image's manifest as an anonymous client would.

    Args:
        image: ``<host>/<name>@sha256:<digest>``, what the Container App runs.
        base_url: The registry's URL; ``https://<host>`` by default.

    Returns:
        What was found, in one line.

    Raises:
        RegistryError: If an anonymous client cannot read the manifest.
    """
    ref = ImageRef.parse(image)
    url = f"{base_url or 'https://' + ref.host}/v2/{ref.name}/manifests/{ref.reference}"
    status, headers, _ = _request(url, None, "HEAD")
    if status == 401:
        challenge = _challenge(headers.get("WWW-Authenticate") or headers.get("www-authenticate") or "")
        token = _anonymous_token(challenge)
        status = _request(url, token, "HEAD")[0] if token else 401
    if status == 200:
        return f"{image} can be pulled anonymously"
    package = ref.name.rsplit("/", 1)[-1]
    if status in (401, 403, 404):
        advice = MAKE_PUBLIC.format(name=package)
        raise RegistryError(f"{image} cannot be pulled without credentials (HTTP {status}): {advice}")
    raise RegistryError(f"the registry answered HTTP {status} for {image}")


def main(argv: list[str] | None = None) -> int:
    """Runs ``check-public``; exit code 0, 1 when the image is not public, 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="python -m delivery.registry", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-public", help="Fail unless IMAGE can be pulled anonymously.")
    check.add_argument("image")
    check.add_argument("--registry-url", help="The registry's base URL (default: https://<host>).")
    args = parser.parse_args(argv)
    try:
        print(check_public(args.image, args.registry_url), file=sys.stderr)
    except (RegistryError, OSError, ValueError) as exc:
        return report_failure(args.command, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
