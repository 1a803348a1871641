"""Gold: per-minute counts, viewer presence and sessions, as Spark transforms over whole frames.

Every function here is pure. The semantics are exact (docs/pipeline.md, "What Gold means"):

- windows are 1-minute tumbling windows `[start, start + 60 s)` on event time (UTC);
- a viewer is *present* at a window's end `T` when their latest event on the video before `T` is not
  a `leave` and happened at or after `T - 120 s`;
- a session ends after more than 300 s of silence, or with a `leave`.

Ties at the same instant are ordered with `leave` last, then by event_id, in every computation here and
in the reference implementation.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pulse_core.semantics import SESSION_GAP_S, WINDOW_S


def window_start(event_time: Column) -> Column:
    """The start of the 1-minute window an instant falls in."""
    return F.date_trunc("minute", event_time)


def _plus_seconds(column: Column, seconds: int) -> Column:
    return column + F.make_interval(secs=F.lit(seconds))


def touched_windows(batch: DataFrame) -> DataFrame:
    """(video_id, window_start) whose Gold rows a batch of new events can change.

    An event at `t` is counted in its own window, and it can be the latest event before the end `T` of
    that window and of the next one (`T - 120 s <= t < T`), so presence there may change too.
    """
    own = batch.select("video_id", window_start(F.col("event_time")).alias("window_start"))
    following = own.select("video_id", _plus_seconds(F.col("window_start"), WINDOW_S).alias("window_start"))
    return own.unionByName(following).distinct()


def events_by_type(events: DataFrame) -> DataFrame:
    """How many events of each type each video had in each minute."""
    return (
        events.withColumn("window_start", window_start(F.col("event_time")))
        .groupBy("window_start", "video_id", "event")
        .agg(F.count(F.lit(1)).alias("event_count"))
        .withColumn("window_end", _plus_seconds(F.col("window_start"), WINDOW_S))
        .select("window_start", "window_end", "video_id", "event", "event_count")
    )


def video_activity(events: DataFrame, windows: DataFrame) -> DataFrame:
    """Per video and minute: active viewers, viewers present at the minute's end, and activity counts.

    Args:
        events: Silver events covering `[window_start - 60 s, window_start + 60 s)` of every window asked for.
        windows: (video_id, window_start) to compute; a window without events on the video gets no row.
    """
    own = window_start(F.col("event_time"))
    # Each event matters to its own window (as activity and presence) and to the next (presence only).
    exploded = events.select(
        "video_id",
        "user_id",
        "event",
        "event_time",
        F.explode(
            F.array(
                F.struct(own.alias("window_start"), F.lit(True).alias("in_window")),
                F.struct(_plus_seconds(own, WINDOW_S).alias("window_start"), F.lit(False).alias("in_window")),
            )
        ).alias("slot"),
    ).select("video_id", "user_id", "event", "event_time", "slot.window_start", "slot.in_window")
    relevant = exploded.join(windows, ["video_id", "window_start"])
    is_leave = F.col("event") == "leave"
    per_viewer = relevant.groupBy("video_id", "window_start", "user_id").agg(
        F.count(F.when(F.col("in_window"), 1)).alias("events"),
        F.count(F.when(F.col("in_window") & (F.col("event") == "message"), 1)).alias("messages"),
        F.count(F.when(F.col("in_window") & (F.col("event") == "like"), 1)).alias("likes"),
        # The latest event before the window's end; at the same instant a leave counts as later.
        F.max(F.struct(F.col("event_time"), is_leave.alias("is_leave"))).alias("latest"),
    )
    return (
        per_viewer.groupBy("video_id", "window_start")
        .agg(
            F.count(F.when(F.col("events") > 0, 1)).alias("active_viewers"),
            F.count(F.when(~F.col("latest.is_leave"), 1)).alias("concurrent_viewers"),
            F.sum("messages").alias("message_count"),
            F.sum("likes").alias("like_count"),
            F.sum("events").alias("event_count"),
        )
        .where(F.col("event_count") > 0)
        .withColumn("window_end", _plus_seconds(F.col("window_start"), WINDOW_S))
        .select(
            "window_start",
            "window_end",
            "video_id",
            F.col("active_viewers").cast("long"),
            F.col("concurrent_viewers").cast("long"),
            F.col("message_count").cast("long"),
            F.col("like_count").cast("long"),
            F.col("event_count").cast("long"),
        )
    )


def as_segments(events: DataFrame) -> DataFrame:
    """Each event as a one-event session segment, the unit `sessionize_segments` chains into sessions."""
    is_leave = F.col("event") == "leave"
    return events.select(
        "user_id",
        "video_id",
        F.col("event_time").alias("seg_start"),
        F.col("event_time").alias("seg_end"),
        F.lit(1).cast("long").alias("seg_events"),
        (F.col("event") == "message").cast("long").alias("seg_messages"),
        is_leave.alias("seg_ends_by_leave"),
        is_leave.cast("int").alias("_tie_leave"),
        F.col("event_id").alias("_tie_id"),
    )


def sessionize_segments(segments: DataFrame) -> DataFrame:
    """Chain segments into sessions: a new one starts after more than 300 s of silence or after a leave.

    Segments of one (user, video) never overlap in time: each is one event, or an existing session all
    of whose events come before every other segment's. Ties at one instant put a leave last.
    """
    order = Window.partitionBy("user_id", "video_id").orderBy("seg_start", "_tie_leave", "_tie_id")
    previous_end = F.lag(F.unix_micros("seg_end")).over(order)
    starts = (
        previous_end.isNull()
        | ((F.unix_micros("seg_start") - previous_end) > SESSION_GAP_S * 1_000_000)
        | F.lag("seg_ends_by_leave").over(order)
    )
    numbered = segments.withColumn("_starts", starts.cast("int")).withColumn(
        "_session", F.sum("_starts").over(order.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    )
    return (
        numbered.groupBy("user_id", "video_id", "_session")
        .agg(
            F.min("seg_start").alias("session_start"),
            F.max("seg_end").alias("session_end"),
            F.sum("seg_events").alias("event_count"),
            F.sum("seg_messages").alias("message_count"),
            F.max_by("seg_ends_by_leave", F.struct("seg_start", "_tie_leave", "_tie_id")).alias(
                "ended_by_leave"
            ),
        )
        .withColumn(
            "duration_seconds",
            (F.unix_micros("session_end") - F.unix_micros("session_start")).cast("double") / 1_000_000,
        )
        .select(
            "user_id",
            "video_id",
            "session_start",
            "session_end",
            "duration_seconds",
            F.col("event_count").cast("long"),
            F.col("message_count").cast("long"),
            F.col("ended_by_leave").cast("boolean"),
        )
    )


def sessionize(events: DataFrame) -> DataFrame:
    """Sessions per (user, video): a new one starts after more than 300 s of silence or after a leave."""
    return sessionize_segments(as_segments(events))
