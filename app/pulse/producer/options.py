"""What `pulse produce` can be asked to do: each option once, with its default, its range and its help.

`pulse produce` builds its command-line options from these fields (typer then checks the ranges before
anything runs), code that produces events gets the same checks, and the simulator takes its audience
defaults from here. No Spark, no Kafka, no numpy: the CLI imports it to describe itself.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pulse_core.contract import MAX_PAYLOAD_LENGTH

# The audience the simulator builds when nothing else is asked for (`AudienceConfig` reads these too).
DEFAULT_RATE = 100.0
DEFAULT_VIDEOS = 5
DEFAULT_HYPE_EVERY_S = 180


class ProduceOptions(BaseModel):
    """What `pulse produce` was asked to do."""

    model_config = ConfigDict(frozen=True)

    events: int | None = Field(None, ge=1, description="Send this many events, then stop.")
    duration_s: float | None = Field(
        None, ge=0.001, description="Send this many seconds of (event-time) audience."
    )
    rate: float = Field(
        DEFAULT_RATE,
        ge=0,
        le=1_000_000,
        description="Events per second; 0 sends as fast as possible. Also sizes the audience.",
    )
    videos: int = Field(DEFAULT_VIDEOS, ge=1, le=100_000, description="How many live streams to simulate.")
    seed: int | None = Field(None, ge=0, description="Random seed: the same seed sends the same events.")
    start: datetime | None = Field(
        None, description="Event time of the first event (ISO-8601), for backfills. Default: now (live)."
    )
    from_file: Path | None = Field(
        None, description="Replay a JSONL file exactly, one value per line (invalid lines too)."
    )
    inject_bad: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Fraction of events replaced by malformed ones, covering every reason code.",
    )
    duplicates: float = Field(
        0.0, ge=0, le=1, description="Fraction of events resent later, as retries would."
    )
    hype_every_s: int = Field(
        DEFAULT_HYPE_EVERY_S, ge=0, description="Seconds between hype moments (chat bursts); 0 = none."
    )
    late: float = Field(
        0.0, ge=0, le=1, description="Fraction of events delivered late (out of order), as flaky clients do."
    )
    max_late_s: float = Field(
        600.0, ge=0, le=86_400, description="How late a late event can be, in seconds of event time."
    )
    chat_chars: int | None = Field(
        None,
        ge=1,
        le=MAX_PAYLOAD_LENGTH,
        description="Make every chat message this many characters long (load tests).",
    )

    @model_validator(mode="after")
    def _says_how_much(self) -> ProduceOptions:
        if self.from_file is None and self.events is None and self.duration_s is None:
            raise ValueError("say how much to send: --events N or --duration S (or replay --from-file)")
        return self

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of one option."""
        return cls.model_fields[name].default

    @classmethod
    def limits(cls, name: str) -> dict[str, float]:
        """The inclusive range of one option, as `min` and `max` (either may be missing)."""
        found: dict[str, float] = {}
        for constraint in cls.model_fields[name].metadata:
            if (low := getattr(constraint, "ge", None)) is not None:
                found["min"] = low
            if (high := getattr(constraint, "le", None)) is not None:
                found["max"] = high
        return found

    @classmethod
    def help(cls, name: str) -> str:
        """The help text of one option."""
        return cls.model_fields[name].description or ""
