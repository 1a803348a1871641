"""Keep the streaming job paused in the plan of a deploy that resets its checkpoints.

A reset moves the changed jobs' checkpoints aside; the new code must not run on the old checkpoints
before that. Terraform rewrites the whole job on every deploy (the wheel path changes with each commit),
pause status included, so a plan made from the stack as configured would un-pause the job (on a re-run
after a failed reset, the job paused by the first attempt would start again on the old checkpoints).
When the state check decides on a reset, the deploy runs this on the synthesized stack *before* it
plans: the plan, which the reviewers read, sets the job PAUSED, and ``python -m delivery.databricks rollout``
resumes the job with the configured status only once the reset run succeeded. The next deploy's plan puts the
configuration back in Terraform's state (no change to the live job, which already runs as configured).

Usage::

    python -m delivery.hold cdktf.out/stacks/pulse-prod/cdk.tf.json --job pulse-pipeline-prod \
        [--github-output FILE]

Prints (and appends to ``--github-output``) ``pipeline_pause=<configured status>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# The blocks of a databricks_job that carry a pause_status: a continuous job, a cron schedule, a trigger.
PAUSABLE_BLOCKS = ("continuous", "schedule", "trigger")


class HoldError(ValueError):
    """The stack has no such job, or the job nothing to pause."""


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for name in PAUSABLE_BLOCKS:
        block = body.get(name)
        for item in block if isinstance(block, list) else [block]:
            if isinstance(item, dict):
                found.append(item)
    return found


def hold_paused(stack: dict[str, Any], job_name: str) -> str:
    """Sets the named job's pause status to PAUSED in a synthesized stack, in place.

    Args:
        stack: The parsed ``cdk.tf.json``.
        job_name: The job's ``name`` (e.g. ``pulse-pipeline-prod``).

    Returns:
        The pause status the stack configured (``PAUSED`` or ``UNPAUSED``), to restore after the reset.

    Raises:
        HoldError: No job of that name, or no continuous/schedule/trigger block on it.
    """
    jobs = [body for body in stack.get("resource", {}).get("databricks_job", {}).values()]
    matching = [body for body in jobs if body.get("name") == job_name]
    if len(matching) != 1:
        raise HoldError(f"expected one databricks_job named {job_name!r}, found {len(matching)}")
    blocks = _blocks(matching[0])
    if not blocks:
        raise HoldError(f"job {job_name!r} has no {'/'.join(PAUSABLE_BLOCKS)} block to pause")
    configured = {block.get("pause_status", "UNPAUSED") for block in blocks}
    for block in blocks:
        block["pause_status"] = "PAUSED"
    return "UNPAUSED" if "UNPAUSED" in configured else "PAUSED"


def main(argv: list[str] | None = None) -> int:
    """Rewrites the stack file and reports the configured status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", type=Path, help="The synthesized cdk.tf.json (rewritten in place).")
    parser.add_argument("--job", required=True, help="Name of the streaming job.")
    parser.add_argument("--github-output", type=Path, help="Append pipeline_pause=<status> here.")
    args = parser.parse_args(argv)
    try:
        stack = json.loads(args.stack.read_text())
        configured = hold_paused(stack, args.job)
    except (OSError, json.JSONDecodeError, HoldError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.stack.write_text(json.dumps(stack, indent=2) + "\n")
    print(f"{args.job} is planned PAUSED until its checkpoints are reset (configured: {configured})")
    if args.github_output is not None:
        with args.github_output.open("a") as out:
            out.write(f"pipeline_pause={configured}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
