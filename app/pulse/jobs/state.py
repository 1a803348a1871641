"""Versions of each streaming query's state and checkpoint layout.

Bump a job's number whenever a change makes its existing checkpoint unusable: a new stateful
operator or state schema, a changed source, a renamed sink. The deploy pipeline compares these with
the versions recorded at the last deploy and refuses to roll out a change without an explicit reset.
"""

from __future__ import annotations

STATE_VERSIONS: dict[str, int] = {
    # Kafka → every layer in one query (`pulse pipeline all`); new in version 2 of the layout.
    "pipeline": 1,
    # Kafka → Bronze only; 2: Bronze's value became binary.
    "bronze": 2,
    # Bronze → Silver and Gold (`pulse pipeline silver`), replacing the chained silver and gold queries.
    "refine": 1,
}
