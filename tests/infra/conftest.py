"""Session fixtures for the infra tests: every stack is synthesized exactly once per test session.

Importing the azurerm bindings costs ~8 s and ~1 GB, so nothing else in tests/infra synthesizes.
"""

from __future__ import annotations

import json

import pytest
from infra_testkit import ENV_NAMES, SynthesizedStack

from infra.config import ENVIRONMENTS


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthesizedStack]:
    """Synthesizes the whole app (all environments) once and returns each stack by environment name."""
    from infra.main import build_app

    outdir = tmp_path_factory.mktemp("cdktf-out")
    build_app(outdir=outdir).synth()
    stacks: dict[str, SynthesizedStack] = {}
    for env, config in ENVIRONMENTS.items():
        path = outdir / "stacks" / config.stack_name / "cdk.tf.json"
        text = path.read_text()
        stacks[env] = SynthesizedStack(config=config, path=path, text=text, doc=json.loads(text))
    return stacks


@pytest.fixture(params=ENV_NAMES)
def stack(request: pytest.FixtureRequest, synthesized: dict[str, SynthesizedStack]) -> SynthesizedStack:
    """Each environment's stack in turn."""
    return synthesized[request.param]
