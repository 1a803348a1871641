"""cdktf entry point: synthesizes one stack per environment into ``cdktf.out/``.

Run from the repository root as ``python infra/main.py`` (what ``cdktf.json`` and ``make synth`` do).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    # Run as a script, Python puts infra/ itself first on sys.path; replace it with the repository root
    # so that ``import infra...`` resolves and no module here shadows an installed package.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO_ROOT / "infra"]
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CHECKPOINT_DISABLE", "1")

from cdktf import App  # noqa: E402

from infra.config import ENVIRONMENTS  # noqa: E402
from infra.org_stack import ConfluentOrgStack  # noqa: E402
from infra.stack import PulseStack  # noqa: E402


def build_app(outdir: str | Path | None = None, envs: list[str] | None = None) -> App:
    """Builds the cdktf app: one ``PulseStack`` per environment, and the Confluent organization bootstrap.

    Args:
        outdir: Where ``synth`` writes; defaults to the CLI's choice or ``cdktf.out``.
        envs: Environments to include; all of them by default.

    Returns:
        The app, ready for ``synth()``.
    """
    app = App(outdir=str(outdir)) if outdir is not None else App()
    selected = envs or list(ENVIRONMENTS)
    for env in selected:
        PulseStack(app, ENVIRONMENTS[env])
    ConfluentOrgStack(app, [ENVIRONMENTS[env] for env in selected])
    return app


def main() -> None:
    """Synthesizes every environment's stack."""
    build_app().synth()


if __name__ == "__main__":
    main()
