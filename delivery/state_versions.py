"""Safe rollout of stateful streams: compare the code's state versions with the last deploy's.

``app/pulse/jobs/state_versions.toml`` holds one number per streaming query (``pulse.jobs.Query``; the
pipeline reads the same file as ``pulse.jobs.state.STATE_VERSIONS``). A query's number changes when its
existing checkpoint becomes unusable. The deploy pipeline records the versions it
rolled out to each environment (``deploy-record.json`` in the environment's Databricks workspace, see
docs/delivery.md) and runs this check *before* it changes anything:

* nothing recorded and no streaming job yet (first deploy): the jobs start fresh, nothing to reset;
* nothing recorded but the streaming job exists (deployed outside the pipeline, e.g. a manual bootstrap):
  its checkpoints' versions are unknown, so stop with exit code 4 and say how to write the record (or
  reset every job with ``--reset true``);
* no job's version changed: restart every job from its checkpoint;
* a version changed and ``--reset true``: reset the changed jobs' checkpoints, then restart;
* a version changed without ``--reset true``: stop with exit code 3 and say what to do.

Pure Python, no cloud access, no project imports (the versions file is data, read with ``tomllib``), so
it runs on a bare runner and in unit tests.

Usage::

    python -m delivery.state_versions --recorded recorded.json --job-exists true --reset false
    python -m delivery.state_versions --recorded - --reset true < recorded.json
    python -m delivery.state_versions --write-record out.json --commit "$GITHUB_SHA"
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_FILE = REPO_ROOT / "app" / "pulse" / "jobs" / "state_versions.toml"
RECORD_KEY = "state_versions"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_RESET_REQUIRED = 3
EXIT_UNRECORDED = 4
DEFAULT_RECORD_LOCATION = "the environment's deploy record"


class Action(StrEnum):
    """What the deploy does with the streaming jobs' checkpoints."""

    FIRST_DEPLOY = "first-deploy"
    RESTART = "restart"
    RESET = "reset"
    BLOCKED = "blocked"
    UNRECORDED = "unrecorded"


@dataclass(frozen=True)
class StateDiff:
    """How the code's state versions differ from the recorded ones.

    Attributes:
        changed: Jobs whose version differs, as ``job -> (recorded, current)``.
        added: Jobs with no recorded version (no checkpoint yet, so they start fresh).
        removed: Recorded jobs the code no longer has (their checkpoints are left alone).
    """

    changed: dict[str, tuple[int, int]] = field(default_factory=dict)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The outcome of the check.

    Attributes:
        action: What the deploy does.
        reset_jobs: Jobs whose checkpoints are reset (only with ``Action.RESET``).
        message: One paragraph for the deploy log.
    """

    action: Action
    reset_jobs: tuple[str, ...]
    message: str

    @property
    def exit_code(self) -> int:
        """0 unless a reset is needed and was not given, or the deployed versions are unknown."""
        return {Action.BLOCKED: EXIT_RESET_REQUIRED, Action.UNRECORDED: EXIT_UNRECORDED}.get(
            self.action, EXIT_OK
        )


class StateVersionError(ValueError):
    """The versions could not be read: a malformed record or versions file."""


def _validate(versions: object, where: str) -> dict[str, int]:
    if not isinstance(versions, dict):
        raise StateVersionError(f"{where}: expected an object of job -> integer version, got {versions!r}")
    clean: dict[str, int] = {}
    for job, version in versions.items():
        if not isinstance(job, str) or isinstance(version, bool) or not isinstance(version, int):
            raise StateVersionError(f"{where}: {job!r}: {version!r} is not job name -> integer version")
        clean[job] = version
    return clean


def load_current_versions(path: Path = STATE_FILE) -> dict[str, int]:
    """Reads the state versions of the code being deployed, without importing the application.

    Args:
        path: The TOML file of ``query = version`` lines.

    Returns:
        Query name -> state version.

    Raises:
        StateVersionError: If the file is not TOML, or holds anything but integer versions.
    """
    try:
        versions = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise StateVersionError(f"{path}: not valid TOML: {exc}") from None
    if not versions:
        raise StateVersionError(f"{path}: no state versions")
    return _validate(versions, str(path))


def parse_recorded(text: str | None) -> dict[str, int] | None:
    """Parses the versions recorded at the environment's last deploy.

    Args:
        text: Either a deploy record (``{"state_versions": {...}, ...}``) or a bare ``{"job": n}``
            object. Empty text, ``null`` or ``{}`` means nothing was recorded.

    Returns:
        Job name -> version, or None when nothing was recorded (first deploy).

    Raises:
        StateVersionError: If the text is not valid JSON or not of either shape.
    """
    if text is None or not text.strip():
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateVersionError(f"recorded state versions are not valid JSON: {exc}") from None
    if doc is None:
        return None
    if isinstance(doc, dict) and RECORD_KEY in doc:
        doc = doc[RECORD_KEY]
    versions = _validate(doc, "recorded state versions")
    return versions or None


def compare(current: dict[str, int], recorded: dict[str, int]) -> StateDiff:
    """Compares the code's versions with the recorded ones.

    Args:
        current: Versions in the code being deployed.
        recorded: Versions at the environment's last deploy.

    Returns:
        The changed, added and removed jobs.
    """
    changed = {
        job: (recorded[job], version)
        for job, version in current.items()
        if job in recorded and recorded[job] != version
    }
    added = tuple(job for job in current if job not in recorded)
    removed = tuple(job for job in recorded if job not in current)
    return StateDiff(changed=changed, added=added, removed=removed)


def unrecorded_message(record_location: str) -> str:
    """How to proceed when the job exists but no deploy record does."""
    return (
        f"No deploy record at {record_location}, yet the streaming job already exists: this environment was "
        "deployed outside the pipeline (a manual bootstrap?), so the state versions of its checkpoints are "
        "unknown and cannot be compared. Refusing to deploy. Write the record of what runs there and re-run: "
        "check out the deployed commit and run `python -m delivery.state_versions --write-record "
        "deploy-record.json --commit <deployed SHA>`, then, logged in with `az login`, upload it with "
        "`DATABRICKS_HOST=https://<workspace host> DATABRICKS_AUTH_TYPE=azure-cli python -m "
        f"delivery.databricks write-record deploy-record.json --record {record_location}`. "
        "If its checkpoints may be discarded instead, re-run with reset_state=true (docs/delivery.md)."
    )


def decide(
    current: dict[str, int],
    recorded: dict[str, int] | None,
    reset: bool,
    job_exists: bool = False,
    record_location: str = DEFAULT_RECORD_LOCATION,
) -> Decision:
    """Decides whether the deploy restarts from checkpoints, resets some, or must stop.

    Args:
        current: Versions in the code being deployed.
        recorded: Versions at the environment's last deploy; None when nothing was recorded.
        reset: Whether the operator asked for a state reset (``reset_state: true``).
        job_exists: Whether the environment's streaming job exists already. Without a record, only an
            environment without the job is a first deploy.
        record_location: Where the record lives (for the message).

    Returns:
        The decision; ``Action.BLOCKED`` when a version changed and no reset was given,
        ``Action.UNRECORDED`` when the job exists without a record and no reset was given.
    """
    if recorded is None and job_exists:
        if reset:
            jobs = tuple(sorted(current))
            return Decision(
                Action.RESET,
                jobs,
                f"No deploy record at {record_location} but the streaming job exists, and reset_state=true: "
                f"the checkpoints of every job ({', '.join(jobs)}) are moved aside and they start over.",
            )
        return Decision(Action.UNRECORDED, (), unrecorded_message(record_location))
    if recorded is None:
        return Decision(
            Action.FIRST_DEPLOY,
            (),
            "No state versions recorded for this environment (first deploy): the jobs start without "
            "checkpoints; nothing to reset.",
        )
    diff = compare(current, recorded)
    notes = []
    if diff.added:
        notes.append(f"new jobs start fresh: {', '.join(diff.added)}")
    if diff.removed:
        notes.append(f"jobs no longer in the code (checkpoints left alone): {', '.join(diff.removed)}")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    if not diff.changed:
        ignored = " reset_state=true was ignored: no state version changed." if reset else ""
        return Decision(
            Action.RESTART,
            (),
            f"State versions unchanged: every job restarts from its checkpoint.{ignored}{suffix}",
        )
    described = ", ".join(f"{job} {old} -> {new}" for job, (old, new) in sorted(diff.changed.items()))
    jobs = tuple(sorted(diff.changed))
    if reset:
        return Decision(
            Action.RESET,
            jobs,
            f"State versions changed ({described}) and reset_state=true: the checkpoints of "
            f"{', '.join(jobs)} are moved aside and those jobs start over; the others restart from their "
            f"checkpoints.{suffix}",
        )
    return Decision(
        Action.BLOCKED,
        jobs,
        f"State version changed ({described}): the existing checkpoints of {', '.join(jobs)} cannot be "
        "reused. Refusing to deploy without an explicit reset. Re-run the deploy workflow with "
        "reset_state=true (Actions -> deploy -> Run workflow) after reading the reset procedure in "
        f"docs/delivery.md.{suffix}",
    )


def build_record(current: dict[str, int], commit: str, now: datetime | None = None) -> dict[str, object]:
    """The record a successful deploy leaves in the environment.

    Args:
        current: The versions just deployed.
        commit: The deployed commit SHA.
        now: The deploy time; defaults to now (UTC).

    Returns:
        A JSON-serialisable record that ``parse_recorded`` reads back.
    """
    moment = now or datetime.now(UTC)
    return {RECORD_KEY: current, "commit": commit, "deployed_at": moment.isoformat(timespec="seconds")}


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no", ""}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _read(source: str) -> str | None:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    return path.read_text() if path.is_file() else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recorded",
        default=None,
        help="JSON of the versions recorded at the last deploy ('-' for stdin; a missing file = none).",
    )
    parser.add_argument("--reset", type=_flag, default=False, help="reset_state input: true or false.")
    parser.add_argument(
        "--job-exists",
        type=_flag,
        default=False,
        help="Whether the streaming job exists (true/false): no record plus a job is not a first deploy.",
    )
    parser.add_argument(
        "--record-location", default=DEFAULT_RECORD_LOCATION, help="Where the record lives (for messages)."
    )
    parser.add_argument(
        "--state-file", type=Path, default=STATE_FILE, help="The state versions (TOML: query = version)."
    )
    parser.add_argument("--github-output", type=Path, help="Append action/reset_jobs for later steps here.")
    parser.add_argument("--write-record", type=Path, help="Write the deploy record here instead of checking.")
    parser.add_argument("--commit", default="", help="Commit SHA stored in the record (--write-record).")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the check (or writes a record) and returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        current = load_current_versions(args.state_file)
        if args.write_record is not None:
            args.write_record.write_text(json.dumps(build_record(current, args.commit), indent=2) + "\n")
            print(f"deploy record written to {args.write_record}: {json.dumps(current, sort_keys=True)}")
            return EXIT_OK
        recorded = parse_recorded(_read(args.recorded) if args.recorded else None)
    except (StateVersionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    decision = decide(current, recorded, args.reset, args.job_exists, args.record_location)
    print(f"current state versions:  {json.dumps(current, sort_keys=True)}")
    print(f"recorded state versions: {json.dumps(recorded, sort_keys=True) if recorded else 'none'}")
    print(f"action: {decision.action}")
    failed = decision.exit_code != EXIT_OK
    print(("error: " if failed else "") + decision.message, file=sys.stderr if failed else sys.stdout)
    if args.github_output is not None:
        with args.github_output.open("a") as out:
            out.write(f"action={decision.action}\n")
            out.write(
                f"reset_jobs={' '.join(decision.reset_jobs) if decision.action is Action.RESET else ''}\n"
            )
    return decision.exit_code


if __name__ == "__main__":
    sys.exit(main())
