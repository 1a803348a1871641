"""Session fixtures for the infra tests: every stack is synthesized exactly once per test session.

Importing the azurerm bindings costs ~8 s and ~1 GB, so nothing else in tests/infra synthesizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from infra_testkit import ENV_NAMES, SynthesizedStack, keyed_staging_config, public_dev_config

from infra.config import ENVIRONMENTS, ORG_STACK_NAME, EnvConfig


@pytest.fixture(scope="session")
def synth_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthesizes the whole app (every environment and the organization bootstrap) once, with a dev that
    opts out of sign-in (``public_dev``) and a staging that runs the keyed engine (``keyed_staging``)
    beside it."""
    from infra.main import build_app
    from infra.stack import PulseStack

    outdir = tmp_path_factory.mktemp("cdktf-out")
    app = build_app(outdir=outdir)
    PulseStack(app, public_dev_config())
    PulseStack(app, keyed_staging_config())
    app.synth()
    return outdir


def _load(outdir: Path, stack_name: str, config: EnvConfig | None) -> SynthesizedStack:
    path = outdir / "stacks" / stack_name / "cdk.tf.json"
    text = path.read_text()
    return SynthesizedStack(config=config, path=path, text=text, doc=json.loads(text))


@pytest.fixture(scope="session")
def synthesized(synth_outdir: Path) -> dict[str, SynthesizedStack]:
    """Each environment's stack, by environment name."""
    return {env: _load(synth_outdir, config.stack_name, config) for env, config in ENVIRONMENTS.items()}


@pytest.fixture(scope="session")
def org_stack(synth_outdir: Path) -> SynthesizedStack:
    """The Confluent organization bootstrap stack (``pulse-confluent-org``); it has no ``config``."""
    return _load(synth_outdir, ORG_STACK_NAME, None)


@pytest.fixture(scope="session")
def public_dev(synth_outdir: Path) -> SynthesizedStack:
    """A dev stack whose config serves the dashboard without sign-in (``dashboard.public``)."""
    config = public_dev_config()
    return _load(synth_outdir, config.stack_name, config)


@pytest.fixture(scope="session")
def keyed_staging(synth_outdir: Path) -> SynthesizedStack:
    """A staging stack whose config runs the keyed engine (``databricks.engine``)."""
    config = keyed_staging_config()
    return _load(synth_outdir, config.stack_name, config)


@pytest.fixture(params=ENV_NAMES)
def stack(request: pytest.FixtureRequest, synthesized: dict[str, SynthesizedStack]) -> SynthesizedStack:
    """Each environment's stack in turn."""
    return synthesized[request.param]
