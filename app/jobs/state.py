"""Versions of each streaming query's state and checkpoint layout.

Bump a job's number whenever a change makes its existing checkpoint unusable: a new stateful
operator or state schema, a changed source, a renamed sink. The deploy pipeline compares these with
the versions recorded at the last deploy and refuses to roll out a change without an explicit reset.
"""

from __future__ import annotations

STATE_VERSIONS: dict[str, int] = {
    "bronze": 1,
    "silver": 1,
    "gold": 1,
}
