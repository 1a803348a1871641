"""Small helpers the jobs share."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"


def timestamp_bounds(frame: DataFrame, column: str) -> tuple[str | None, str | None]:
    """min and max of a timestamp column as SQL literals (`TIMESTAMP '…'`), or None on an empty frame.

    Spark formats them in the session time zone, so the literals denote the same instants whatever
    the driver's local time zone is.
    """
    row = frame.agg(F.date_format(F.min(column), _FORMAT), F.date_format(F.max(column), _FORMAT)).first()
    if row is None or row[0] is None:
        return None, None
    return f"TIMESTAMP '{row[0]}'", f"TIMESTAMP '{row[1]}'"
