"""Gold over whole tables, in Spark tasks, by the code the live pipeline runs on a micro-batch.

There is one Gold implementation, `pulse.transforms.gold` (docs/pipeline.md, "What Gold means"). A live
micro-batch runs it on the driver over the minutes and viewers it touches; here Spark runs it in tasks,
one Arrow group at a time (`applyInArrow`), for whole-table work such as `pulse backfill`. The groups are
cut so that every result is exact and no single key bounds the work:

- **Windows** (`events_by_type`, `video_activity`) group by video and 10-minute chunk of event time. A
  viewer's presence at a window's end looks back 120 s, so the last minute of each chunk also goes to the
  next chunk, as context only. A video that holds most of an audience still spreads over many tasks.
- **Sessions** group by a hash bucket of (user, video): a session never spans two viewers, and one
  viewer's events are few.

Every function here is pure: Silver rows (event_id, event_time, event, user_id, video_id) in, Gold rows out.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pulse.tables import GOLD_TABLES
from pulse.transforms import gold
from pulse_core.semantics import WINDOW_S

CHUNK_MINUTES = 10  # event time per window group: a hot video's hour is six tasks
SESSION_BUCKETS = 64  # hash buckets of (user, video) for sessions
_CHUNK_US = CHUNK_MINUTES * WINDOW_S * 1_000_000
_EVENTS = ("event_id", "event_time", "event", "user_id", "video_id")


def _chunk(micros: Column) -> Column:
    return F.floor(micros / F.lit(_CHUNK_US)).cast("long")


def _chunked(events: DataFrame) -> DataFrame:
    """Each event in its own chunk (`_own` true), and, when it falls in its chunk's last minute, once more
    in the next chunk as presence context (`_own` false)."""
    micros = F.unix_micros(F.col("event_time"))
    own = events.select(*_EVENTS, _chunk(micros).alias("_chunk"), F.lit(True).alias("_own"))
    last_minute = _chunk(micros + F.lit(WINDOW_S * 1_000_000)) != _chunk(micros)
    context = events.where(last_minute).select(
        *_EVENTS, (_chunk(micros) + 1).alias("_chunk"), F.lit(False).alias("_own")
    )
    return own.unionByName(context)


def events_by_type(events: DataFrame) -> DataFrame:
    """`gold.events_by_type`: how many events of each type each video had in each minute."""

    def per_group(group: pa.Table) -> pa.Table:
        frame = gold.events_frame(group)
        return gold.events_by_type(frame, frame)

    chunked = events.select(*_EVENTS, _chunk(F.unix_micros(F.col("event_time"))).alias("_chunk"))
    return chunked.groupBy("video_id", "_chunk").applyInArrow(per_group, GOLD_TABLES["events_by_type"][0])


def video_activity(events: DataFrame) -> DataFrame:
    """`gold.video_activity`: per video and minute with events, active viewers, viewers present at the
    minute's end, and activity counts."""

    def per_group(group: pa.Table) -> pa.Table:
        context = gold.events_frame(group)
        own = gold.events_frame(group.filter(group["_own"]))
        windows = own[["video_id"]].assign(window_start=gold.window_of(own["t"])).drop_duplicates()
        return gold.video_activity(context, windows)

    schema = GOLD_TABLES["video_activity"][0]
    return _chunked(events).groupBy("video_id", "_chunk").applyInArrow(per_group, schema)


def sessionize(events: DataFrame) -> DataFrame:
    """`gold.user_sessions`: per (user, video), a new session after more than 300 s of silence or after a
    leave."""

    def per_group(group: pa.Table) -> pa.Table:
        frame = gold.events_frame(group)
        return gold.sessions_table(gold.sessionize(gold.as_segments(frame)))

    bucket = F.pmod(F.xxhash64("user_id", "video_id"), F.lit(SESSION_BUCKETS)).alias("_bucket")
    return (
        events.select(*_EVENTS, bucket)
        .groupBy("_bucket")
        .applyInArrow(per_group, GOLD_TABLES["user_sessions"][0])
    )
