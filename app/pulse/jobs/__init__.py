"""Streaming jobs: each one reads, transforms and writes, in three visible steps.

The jobs' two vocabularies are defined here and nowhere else:

- `Job`: what `pulse pipeline` is asked to run (`all`, `bronze`, `silver`, `gold`);
- `Query`: the streaming query a job starts. Its name is the query's name, its checkpoint folder
  (`<lake>/_checkpoints/<query>`), its key in the state versions (`pulse.jobs.state`) and what
  `pulse reset-checkpoints` takes. Lakes and deploy records store these names, so they never change.
"""

from enum import StrEnum


class Query(StrEnum):
    """The streaming queries, each with its own checkpoint."""

    # Kafka → Bronze, Silver (+ quarantine) and Gold in every micro-batch (`pulse pipeline all`).
    pipeline = "pipeline"
    # Kafka → Bronze only (`pulse pipeline bronze`).
    bronze = "bronze"
    # Bronze's new rows → Silver (+ quarantine) and Gold (`pulse pipeline silver`, alias `gold`).
    refine = "refine"


class Job(StrEnum):
    """The jobs `pulse pipeline` runs (`pulse.jobs.runner.start_query` starts each).

    `all` is the real-time pipeline: one query, every layer per micro-batch. `bronze` lands Kafka in
    Bronze only; `silver` (alias `gold`) refines Bronze into Silver and Gold.
    """

    all = "all"
    bronze = "bronze"
    silver = "silver"
    gold = "gold"

    @property
    def query(self) -> Query:
        """The streaming query this job runs, which names its checkpoint."""
        match self:
            case Job.all:
                return Query.pipeline
            case Job.bronze:
                return Query.bronze
            case Job.silver | Job.gold:
                return Query.refine

    @property
    def reads_kafka(self) -> bool:
        """True for the jobs whose source is the Kafka topic."""
        return self.query in (Query.pipeline, Query.bronze)
