"""Streaming jobs: each one reads, transforms and writes, in three visible steps."""

from enum import StrEnum


class Job(StrEnum):
    """The jobs `pulse pipeline` runs (`pulse.jobs.runner.STARTERS` starts each).

    `all` is the real-time pipeline: one query, every layer per micro-batch. `bronze` lands Kafka in
    Bronze only; `silver` (alias `gold`) refines Bronze into Silver and Gold.
    """

    all = "all"
    bronze = "bronze"
    silver = "silver"
    gold = "gold"

    @property
    def reads_kafka(self) -> bool:
        """True for the jobs whose source is the Kafka topic."""
        return self in (Job.all, Job.bronze)
