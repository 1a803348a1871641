"""How a deploy tool reports a failed step: one line on stderr, an annotation in GitHub Actions."""

from __future__ import annotations

import os
import sys


def report_failure(command: str, exc: BaseException) -> int:
    """Prints ``error: <command>: <message>`` (``::error::`` in GitHub Actions) on one line.

    Returns:
        The exit code of a failed step, 1.
    """
    prefix = "::error::" if os.environ.get("GITHUB_ACTIONS") == "true" else "error: "
    print(f"{prefix}{command}: {' '.join(str(exc).split())}", file=sys.stderr)
    return 1
