"""Runs on Databricks (deploy, reset_state=true): moves the named jobs' checkpoints aside.

The checkpoint locations come from the wheel's own settings (``PULSE_LAKE`` on the job cluster), so this
script never spells a storage path. Nothing is deleted: each checkpoint moves to ``_reset/<commit>/`` next
to it and can be moved back to roll the deploy back.

Arguments: ``<commit> <job> [<job> ...]``.
"""

from __future__ import annotations

import sys

from databricks.sdk.runtime import dbutils

from pulse_core.settings import load_settings


def main(argv: list[str]) -> None:
    """Moves each job's checkpoint to ``<checkpoints>/_reset/<commit>/<job>``."""
    commit, *jobs = argv
    settings = load_settings()
    for job in jobs:
        source = settings.checkpoint_path(job)
        target = f"{source.rsplit('/', 1)[0]}/_reset/{commit}/{job}"
        try:
            dbutils.fs.ls(source)
        except Exception:  # dbutils raises a generic error for a missing path
            print(f"{job}: no checkpoint at {source}, nothing to reset")
            continue
        dbutils.fs.mv(source, target, recurse=True)
        print(f"{job}: checkpoint moved from {source} to {target}")


if __name__ == "__main__":
    main(sys.argv[1:])
