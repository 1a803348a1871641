"""Gold: per-minute counts, viewer presence and sessions, recomputed from Silver for what a batch touches.

Every function here is pure. The semantics are exact (DESIGN.md, Gold semantics):

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

WINDOW_S = 60
PRESENCE_S = 120
SESSION_GAP_S = 300


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


def sessions_as_segments(sessions: DataFrame) -> DataFrame:
    """Existing Gold sessions as segments, so new events that come after them can extend them."""
    return sessions.select(
        "user_id",
        "video_id",
        F.col("session_start").alias("seg_start"),
        F.col("session_end").alias("seg_end"),
        F.col("event_count").alias("seg_events"),
        F.col("message_count").alias("seg_messages"),
        F.col("ended_by_leave").alias("seg_ends_by_leave"),
        F.lit(0).alias("_tie_leave"),
        F.lit("").alias("_tie_id"),
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


def session_update_plan(new_events: DataFrame, recent_sessions: DataFrame) -> DataFrame:
    """Per (user, video) with new events: whether they only extend its sessions, and from when to rebuild.

    A new event at `t` can only change sessions that ended at or after `t - 300 s` (the affected ones).
    When every new event of a pair comes after all its affected sessions, the new events can only
    continue the latest one (`extends` is true: the affected sessions, as segments, are all the history
    needed). Otherwise a late event lands among
    existing ones, and the pair's sessions are rebuilt from Silver from `rebuild_from`, the earliest
    affected session start (or the first new event).

    Args:
        new_events: the batch's new Silver events.
        recent_sessions: Gold sessions, at least all those that ended at or after the batch's first
            event minus 300 s.

    Returns:
        (user_id, video_id, first_new, extends, rebuild_from) rows, one per pair with new events.
    """
    touched = new_events.groupBy("user_id", "video_id").agg(F.min("event_time").alias("first_new"))
    affected = (
        recent_sessions.join(touched, ["user_id", "video_id"])
        .where(F.col("session_end") >= _plus_seconds(F.col("first_new"), -SESSION_GAP_S))
        .groupBy("user_id", "video_id")
        .agg(
            F.count(F.lit(1)).alias("affected"),
            F.min("session_start").alias("earliest_affected"),
            F.max("session_end").alias("latest_end"),
        )
    )
    plan = touched.join(affected, ["user_id", "video_id"], "left")
    extends = F.col("affected").isNull() | (F.col("first_new") > F.col("latest_end"))
    return plan.select(
        "user_id",
        "video_id",
        "first_new",
        extends.alias("extends"),
        F.least("first_new", F.coalesce("earliest_affected", "first_new")).alias("rebuild_from"),
    )


def session_recompute_starts(batch: DataFrame, existing_sessions: DataFrame) -> DataFrame:
    """Per touched (user, video): from which instant sessions must be rebuilt, and which ones are stale.

    A new event at `t` can extend or merge any session that ended at or after `t - 300 s`; sessions that
    ended earlier are closed for good. Rebuilding from the earliest affected session start (or `t`)
    is therefore exact.

    Returns:
        (user_id, video_id, rebuild_from) rows.
    """
    touched = batch.groupBy("user_id", "video_id").agg(F.min("event_time").alias("first_new"))
    affected = (
        existing_sessions.join(touched, ["user_id", "video_id"])
        .where(F.col("session_end") >= _plus_seconds(F.col("first_new"), -SESSION_GAP_S))
        .groupBy("user_id", "video_id")
        .agg(F.min("session_start").alias("earliest_affected"))
    )
    return touched.join(affected, ["user_id", "video_id"], "left").select(
        "user_id",
        "video_id",
        F.least("first_new", F.coalesce("earliest_affected", "first_new")).alias("rebuild_from"),
    )
