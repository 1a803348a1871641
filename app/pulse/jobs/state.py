"""Versions of each streaming query's state and checkpoint layout, from `state_versions.toml` beside this
module (package data in the wheel), where the deploy's check reads them too.

Bump a query's number there whenever a change makes its existing checkpoint unusable.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files

from pulse.jobs import Query

STATE_VERSIONS_FILE = "state_versions.toml"


def load_state_versions() -> dict[Query, int]:
    """Query -> state version, as the file beside this module holds them."""
    text = files("pulse.jobs").joinpath(STATE_VERSIONS_FILE).read_text(encoding="utf-8")
    return {Query(name): int(version) for name, version in tomllib.loads(text).items()}


STATE_VERSIONS: dict[Query, int] = load_state_versions()
