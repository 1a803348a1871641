"""Gold: per-minute counts, viewer presence and sessions, from Arrow tables with pandas and numpy.

This is Pulse's one Gold implementation (docs/pipeline.md, "What Gold means"). It runs in two places:

- on the driver, for a live micro-batch: the minutes and viewers its new events touch are small, and
  Spark would pay its planning and scheduling per query on them however few rows they hold
  (`pulse.jobs.medallion`; docs/pipeline.md, "What a micro-batch costs");
- in Spark tasks, for whole tables (`pulse backfill`): `pulse.transforms.gold_tables` cuts Silver into
  groups whose results are exact and runs the same functions on each.

The tests check it against the independent reference in `testkit.gold_reference`, on each path.

Times are integer microseconds since the epoch (UTC) inside this module.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pulse_core import catalogue
from pulse_core.semantics import PRESENCE_S, SESSION_GAP_S, WINDOW_S

MINUTE_US = WINDOW_S * 1_000_000
GAP_US = SESSION_GAP_S * 1_000_000
PAIR = ["user_id", "video_id"]
SESSION_COLUMNS = ["user_id", "video_id", "start", "end", "events", "messages", "leave"]
_TS = pa.timestamp("us", tz="UTC")
assert PRESENCE_S == 2 * WINDOW_S, "presence looks back over the window and the one before it"


def micros(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A timestamp column as int64 microseconds since the epoch."""
    return pc.cast(column.cast(_TS), pa.int64()).to_numpy(zero_copy_only=False)


def repeated_strings(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A string column of few distinct values (event types, videos, viewers) as a numpy object array that
    shares one Python string per value: about 0.4x the time of one string a row (200,000 rows), and each
    string hashes once for the factorizing and matching that follow."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        return column.to_numpy(zero_copy_only=False)  # Silver's are never null; a test's may be
    encoded = pc.dictionary_encode(column)
    names = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    return names[encoded.indices.to_numpy(zero_copy_only=False)]


def events_frame(events: pa.Table) -> pd.DataFrame:
    """Silver events (event_id, event_time, event, user_id, video_id) as a frame with `t` in microseconds."""
    return pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy(zero_copy_only=False),
            "t": micros(events["event_time"]),
            "event": repeated_strings(events["event"]),
            "user_id": repeated_strings(events["user_id"]),
            "video_id": repeated_strings(events["video_id"]),
        },
        copy=False,
    )


def sessions_frame(sessions: pa.Table) -> pd.DataFrame:
    """Gold sessions as a frame with microsecond start and end."""
    return pd.DataFrame(
        {
            "user_id": sessions["user_id"].to_numpy(zero_copy_only=False),
            "video_id": sessions["video_id"].to_numpy(zero_copy_only=False),
            "start": micros(sessions["session_start"]),
            "end": micros(sessions["session_end"]),
            "events": sessions["event_count"].to_numpy(zero_copy_only=False).astype("int64"),
            "messages": sessions["message_count"].to_numpy(zero_copy_only=False).astype("int64"),
            "leave": sessions["ended_by_leave"].to_numpy(zero_copy_only=False).astype(bool),
        },
        copy=False,
    )


def timestamps(values: pd.Series | np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype="int64"), type=pa.int64()).cast(_TS)


def window_of(t: pd.Series) -> pd.Series:
    """The start of the 1-minute window each instant falls in."""
    return (t // MINUTE_US) * MINUTE_US


def touched_windows(new: pd.DataFrame) -> pd.DataFrame:
    """(video_id, window_start) whose rows new events can change: their own window and the next one."""
    # Deduplicated before the next windows are added: a batch's events fall in few windows, and hashing
    # every event's video id twice was a tenth of a catch-up batch's fold.
    own = pd.DataFrame({"video_id": new["video_id"], "window_start": window_of(new["t"])})
    own = own.drop_duplicates(ignore_index=True)
    following = own.assign(window_start=own["window_start"] + MINUTE_US)
    return pd.concat([own, following]).drop_duplicates(ignore_index=True)


def context_span(new: pd.DataFrame) -> tuple[int, int]:
    """The event times [low, high) the windows new events touch read: presence at a window's end looks
    back 120 s, so from one window before the earliest touched one to the end of the window after the
    latest one."""
    return (
        int(window_of(new["t"].min()) - MINUTE_US),
        int(window_of(new["t"].max()) + 2 * MINUTE_US),
    )


def window_rows(new: pd.DataFrame, context: pd.DataFrame) -> dict[str, pa.Table]:
    """The `gold.video_activity` and `gold.events_by_type` rows new events change, from `context`: the
    events of `context_span(new)` (new ones included)."""
    windows = touched_windows(new)
    context = context[context["video_id"].isin(windows["video_id"].unique())]
    return {
        "video_activity": video_activity(context, windows),
        "events_by_type": events_by_type(context, new),
    }


def events_by_type(context: pd.DataFrame, new: pd.DataFrame) -> pa.Table:
    """`gold.events_by_type` rows of the (video, minute) pairs the new events fall in, counted over
    `context` (all events of those minutes). Counted on integer codes, as `video_activity` is."""
    videos, video_names = pd.factorize(pd.concat([context["video_id"], new["video_id"]], ignore_index=True))
    n, width = len(context), max(len(video_names), 1)
    window = (context["t"].to_numpy("int64") // MINUTE_US) * width + videos[:n]
    touched = (new["t"].to_numpy("int64") // MINUTE_US) * width + videos[n:]
    keep = np.isin(window, touched)
    events, event_names = pd.factorize(context["event"].to_numpy()[keep])
    kinds = max(len(event_names), 1)
    cells, counts = np.unique(window[keep] * kinds + events, return_counts=True)
    window, event = cells // kinds, cells % kinds
    starts = (window // width) * MINUTE_US
    return pa.table(
        {
            "window_start": timestamps(starts),
            "window_end": timestamps(starts + MINUTE_US),
            "video_id": pa.array(np.asarray(video_names, dtype=object)[window % width], pa.string()),
            "event": pa.array(np.asarray(event_names, dtype=object)[event], pa.string()),
            "event_count": pa.array(counts.astype("int64"), pa.int64()),
        }
    )


def video_activity(context: pd.DataFrame, windows: pd.DataFrame) -> pa.Table:
    """`gold.video_activity` rows of `windows` (video_id, window_start), from `context`: every event in
    `[window_start - 60 s, window_start + 60 s)` of each window. A window without events of its own gets
    no row; a viewer is present at its end when their latest event of the two minutes is not a leave
    (a leave counts as later at the same instant)."""
    stats = window_stats(context, windows)
    return activity_table(stats[stats["event_count"] > 0])


ACTIVITY = ("active_viewers", "concurrent_viewers", "message_count", "like_count", "event_count")


def activity_table(stats: pd.DataFrame) -> pa.Table:
    """`window_stats` rows as `gold.video_activity` rows, by video and window."""
    out = stats.sort_values(["video_id", "window_start"], kind="stable")
    return pa.table(
        {
            "window_start": timestamps(out["window_start"]),
            "window_end": timestamps(out["window_start"] + MINUTE_US),
            "video_id": pa.array(out["video_id"], pa.string()),
            **{name: pa.array(out[name].to_numpy("int64"), pa.int64()) for name in ACTIVITY},
        }
    )


def window_stats(context: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """The `gold.video_activity` figures of `windows` over the viewers in `context` (as `video_activity`),
    with `window_start` in microseconds; also for a window with viewers present but no events of its
    own, which has no Gold row but counts in `WindowCells`. A window none of `context` touches is left out.

    Computed on integer codes with numpy: each event counts in its own window and is context for the
    next one; one sort groups the rows by (window, viewer) in time order. The pandas version of the same
    (merges and group-bys on the id strings) took four times as long on a 200,000-event batch.
    """
    videos, video_names = pd.factorize(
        pd.concat([context["video_id"], windows["video_id"]], ignore_index=True)
    )
    users = pd.factorize(context["user_id"])[0].astype("int64")
    n, width = len(context), max(len(video_names), 1)
    t = context["t"].to_numpy("int64")
    event = context["event"].to_numpy()
    minute = t // MINUTE_US
    # Rows: each event in its own window (counted) and in the following one (presence context only).
    window = np.concatenate([minute, minute + 1]) * width + np.concatenate([videos[:n], videos[:n]])
    counted = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    wanted = (windows["window_start"].to_numpy("int64") // MINUTE_US) * width + videos[n:]
    keep = np.isin(window, wanted)
    window, counted = window[keep], counted[keep]
    user = np.concatenate([users, users])[keep]
    time = np.concatenate([t, t])[keep]
    leave = np.concatenate([event == "leave"] * 2)[keep]
    message = np.concatenate([event == "message"] * 2)[keep] & counted
    like = np.concatenate([event == "like"] * 2)[keep] & counted
    # Per (window, viewer), in time order with a leave last at the same instant: the last row decides.
    order = np.lexsort((leave, time, user, window))
    window, user = window[order], user[order]
    first = (
        np.r_[True, (window[1:] != window[:-1]) | (user[1:] != user[:-1])]
        if len(order)
        else np.zeros(0, bool)
    )
    viewer = np.cumsum(first) - 1
    last = np.r_[first[1:], True] if len(order) else first
    events = np.bincount(viewer, weights=counted[order]).astype("int64")
    messages = np.bincount(viewer, weights=message[order]).astype("int64")
    likes = np.bincount(viewer, weights=like[order]).astype("int64")
    present = ~leave[order][last]
    viewer_window = window[first]
    # Per window.
    opens = np.r_[True, viewer_window[1:] != viewer_window[:-1]] if len(viewer_window) else first[:0]
    slot = np.cumsum(opens) - 1

    def per_window(values: np.ndarray) -> np.ndarray:
        return np.bincount(slot, weights=values, minlength=int(opens.sum())).astype("int64")

    out = pd.DataFrame(
        {
            "window_start": (viewer_window[opens] // width) * MINUTE_US,
            "video_id": np.asarray(video_names, dtype=object)[viewer_window[opens] % width],
            "active_viewers": per_window(events > 0),
            "concurrent_viewers": per_window(present),
            "message_count": per_window(messages),
            "like_count": per_window(likes),
            "event_count": per_window(events),
        }
    )
    return out


class WindowCells:
    """The per-minute Gold figures of the windows recent events touch, kept as sums over viewers and
    updated by each viewer's change, so that a batch reads only its own viewers' events.

    Recomputing a touched window from all of its events (`video_activity` over `context_span`) reads
    every viewer's events of three minutes for each batch: about 290,000 events at 2,000 events/s and
    1.2M at 8,000, where that alone took a second of one core per 1-s batch (docs/scale.md, "The driver's
    windows"). A new event changes a window only through its own viewer's share: events, messages,
    likes, active, and present at the window's end. So the cells hold each window's sums over viewers,
    and a batch adds its viewers' shares after it, less their shares before it. This is the per-viewer
    state and per-cell sums of the keyed design in docs/scale.md, on the driver.

    The cells hold a window when every event it depends on is held: its own minute and the one before,
    at or after `floor` (microseconds; None holds every window). A window with viewers present but no
    events of its own has a cell and no Gold row. Windows below that are computed as before, from their
    context (`window_rows`).
    """

    def __init__(self, floor: int | None) -> None:
        self.floor = floor
        self.activity: dict[tuple[str, int], np.ndarray] = {}
        self.by_type: dict[tuple[str, int], dict[str, int]] = {}

    @classmethod
    def of(cls, events: pd.DataFrame, floor: int | None) -> WindowCells:
        """The cells of every window `events` (all held events, `events_frame`) touch."""
        cells = cls(floor)
        windows = touched_windows(events)
        cells._add_stats(window_stats(events, windows[cells.holds(windows["window_start"])]), 1)
        cells._count_types(events)
        return cells

    def holds(self, window_start: pd.Series | np.ndarray) -> np.ndarray:
        """For window starts in microseconds: True where the cells hold the window."""
        starts = np.asarray(window_start, dtype="int64")
        if self.floor is None:
            return np.ones(len(starts), bool)
        return starts - MINUTE_US >= self.floor

    def add(self, added: pd.DataFrame, viewers: pd.DataFrame, is_added: np.ndarray | None = None) -> None:
        """Count in `added`, events new to the state. `viewers` holds every held event of their viewers
        in `context_span(added)`, `added` included (events of other viewers are harmless: their shares
        do not change). `is_added` marks the rows of `viewers` that are `added`'s, when the caller knows
        them; else they are found by event_id."""
        windows = touched_windows(added)
        windows = windows[self.holds(windows["window_start"])]
        if not windows.empty:
            if is_added is None:
                is_added = viewers["event_id"].isin(added["event_id"]).to_numpy()
            before = viewers[~is_added]
            self._add_stats(window_stats(viewers, windows), 1)
            self._add_stats(window_stats(before, windows), -1)
        self._count_types(added)

    def forget(self, floor: int) -> None:
        """Raise the floor: drop the windows the cells no longer hold."""
        self.floor = floor
        self.activity = {key: value for key, value in self.activity.items() if key[1] - MINUTE_US >= floor}
        self.by_type = {key: value for key, value in self.by_type.items() if key[1] - MINUTE_US >= floor}

    def rows(self, new: pd.DataFrame) -> dict[str, pa.Table]:
        """The `gold.video_activity` and `gold.events_by_type` rows new events change, of the windows the
        cells hold (as `window_rows` computes them from the windows' context)."""
        windows = touched_windows(new)
        windows = windows[self.holds(windows["window_start"])]
        held = [
            (video, int(start), figures)
            for video, start in zip(windows["video_id"], windows["window_start"], strict=True)
            if (figures := self.activity.get((video, int(start)))) is not None and figures[-1] > 0
        ]
        figures = np.array([row[2] for row in held], dtype="int64").reshape(len(held), len(ACTIVITY))
        stats = pd.DataFrame(
            {
                "window_start": np.array([row[1] for row in held], dtype="int64"),
                "video_id": np.array([row[0] for row in held], dtype=object),
                **{name: figures[:, i] for i, name in enumerate(ACTIVITY)},
            }
        )
        own = pd.DataFrame({"video_id": new["video_id"], "window_start": window_of(new["t"])})
        own = own[self.holds(own["window_start"])].drop_duplicates()
        types = [
            (video, int(start), event, count)
            for video, start in zip(own["video_id"], own["window_start"], strict=True)
            for event, count in sorted(self.by_type.get((video, int(start)), {}).items())
        ]
        starts = np.array([row[1] for row in types], dtype="int64")
        by_type = pa.table(
            {
                "window_start": timestamps(starts),
                "window_end": timestamps(starts + MINUTE_US),
                "video_id": pa.array([row[0] for row in types], pa.string()),
                "event": pa.array([row[2] for row in types], pa.string()),
                "event_count": pa.array([row[3] for row in types], pa.int64()),
            }
        )
        return {"video_activity": activity_table(stats), "events_by_type": by_type}

    def add_sums(self, stats: pd.DataFrame, types: pd.DataFrame) -> None:
        """Add figures summed over viewers elsewhere (the keyed engine's operator): `stats` as
        `window_stats` gives them, `types` (video_id, window_start, event, event_count)."""
        self._add_stats(stats, 1)
        for video, start, event, count in zip(
            types["video_id"], types["window_start"], types["event"], types["event_count"], strict=True
        ):
            counts = self.by_type.setdefault((video, int(start)), {})
            counts[event] = counts.get(event, 0) + int(count)

    def _add_stats(self, stats: pd.DataFrame, sign: int) -> None:
        values = stats[list(ACTIVITY)].to_numpy("int64") * sign
        for video, start, figures in zip(stats["video_id"], stats["window_start"], values, strict=True):
            key = (video, int(start))
            held = self.activity.get(key)
            self.activity[key] = figures if held is None else held + figures

    def _count_types(self, events: pd.DataFrame) -> None:
        own = pd.DataFrame(
            {
                "video_id": events["video_id"],
                "window_start": window_of(events["t"]),
                "event": events["event"],
            },
            copy=False,
        )
        own = own[self.holds(own["window_start"])]
        for (video, start, event), count in own.value_counts(sort=False).items():
            counts = self.by_type.setdefault((video, int(start)), {})
            counts[event] = counts.get(event, 0) + int(count)


def as_segments(events: pd.DataFrame) -> pd.DataFrame:
    """Each event as a one-event session segment (`transforms.gold.as_segments`)."""
    leave = events["event"] == "leave"
    return pd.DataFrame(
        {
            "user_id": events["user_id"],
            "video_id": events["video_id"],
            "start": events["t"],
            "end": events["t"],
            "events": 1,
            "messages": (events["event"] == "message").astype("int64"),
            "leave": leave,
            "tie_leave": leave.astype("int64"),
            "tie_id": events["event_id"],
        },
        copy=False,
    )


def sessions_as_segments(sessions: pd.DataFrame) -> pd.DataFrame:
    """Existing sessions as segments, so later events that come after them can extend them."""
    return sessions[["user_id", "video_id", "start", "end", "events", "messages", "leave"]].assign(
        tie_leave=0, tie_id=""
    )


def pair_codes(users: pd.Series, videos: pd.Series) -> np.ndarray:
    """One int64 per (user_id, video_id): equal pairs get equal codes (hashing, no string sort)."""
    user_codes, _ = pd.factorize(users)
    video_codes, video_names = pd.factorize(videos)
    return user_codes.astype("int64") * max(len(video_names), 1) + video_codes


def session_order(segments: pd.DataFrame, pair: np.ndarray | None = None) -> np.ndarray:
    """The positions of `segments` grouped by viewer pair, each pair's in (start, leave last, event id)
    order, which is how sessions chain. Pairs come in no particular order.

    Sorting by integer pair codes costs a fraction of sorting the id strings, which dominated a large
    batch when profiled. Only segments that tie on (pair, start, leave), events of one viewer at the
    same instant, are then ordered by their event ids, among themselves.
    """
    pair = pair_codes(segments["user_id"], segments["video_id"]) if pair is None else pair
    start = segments["start"].to_numpy("int64")
    tie = segments["tie_leave"].to_numpy("int64")
    order = np.lexsort((tie, start, pair))
    p, t, k = pair[order], start[order], tie[order]
    same = (p[1:] == p[:-1]) & (t[1:] == t[:-1]) & (k[1:] == k[:-1])
    if not same.any():
        return order
    tied = np.zeros(len(order), bool)
    tied[1:] |= same
    tied[:-1] |= same
    run = np.cumsum(np.r_[True, ~same])
    at = np.flatnonzero(tied)
    runs = pd.DataFrame({"run": run[at], "id": segments["tie_id"].to_numpy()[order[at]], "row": order[at]})
    order[at] = runs.sort_values(["run", "id"], kind="stable")["row"].to_numpy()
    return order


def sessionize(segments: pd.DataFrame) -> pd.DataFrame:
    """Chain segments into sessions: a new one starts after more than 300 s of silence or after a leave.

    Works on the viewer pairs' integer codes and numpy's segment reductions: comparing the id strings
    row by row and a pandas group-by with `first` on them took half of a large batch's session work.
    """
    if segments.empty:
        return pd.DataFrame(columns=SESSION_COLUMNS)
    pair = pair_codes(segments["user_id"], segments["video_id"])
    order = session_order(segments, pair)
    start = segments["start"].to_numpy("int64")[order]
    end = segments["end"].to_numpy("int64")[order]
    leave = segments["leave"].to_numpy(bool)[order]
    same = pair[order]
    opens = np.ones(len(order), bool)
    opens[1:] = (same[1:] != same[:-1]) | (start[1:] - end[:-1] > GAP_US) | leave[:-1]
    heads = np.flatnonzero(opens)
    tails = np.r_[heads[1:] - 1, len(order) - 1]
    first = order[heads]
    return pd.DataFrame(
        {
            "user_id": segments["user_id"].to_numpy()[first],
            "video_id": segments["video_id"].to_numpy()[first],
            "start": np.minimum.reduceat(start, heads),
            "end": np.maximum.reduceat(end, heads),
            "events": np.add.reduceat(segments["events"].to_numpy("int64")[order], heads),
            "messages": np.add.reduceat(segments["messages"].to_numpy("int64")[order], heads),
            "leave": leave[tails],
        },
        copy=False,
    )


SESSIONS_SCHEMA = catalogue.GOLD_USER_SESSIONS.arrow_schema()


def sessions_table(sessions: pd.DataFrame) -> pa.Table:
    """Sessions as `gold.user_sessions` rows."""
    return pa.table(
        {
            "user_id": pa.array(sessions["user_id"], pa.string()),
            "video_id": pa.array(sessions["video_id"], pa.string()),
            "session_start": timestamps(sessions["start"]),
            "session_end": timestamps(sessions["end"]),
            "duration_seconds": pa.array(
                (np.asarray(sessions["end"], "int64") - np.asarray(sessions["start"], "int64")) / 1_000_000,
                pa.float64(),
            ),
            "event_count": pa.array(np.asarray(sessions["events"], "int64"), pa.int64()),
            "message_count": pa.array(np.asarray(sessions["messages"], "int64"), pa.int64()),
            "ended_by_leave": pa.array(np.asarray(sessions["leave"], bool), pa.bool_()),
        },
        schema=SESSIONS_SCHEMA,
    )


def session_update_plan(new: pd.DataFrame, recent: pd.DataFrame) -> pd.DataFrame:
    """Per (user, video) with new events: whether they only extend its sessions, and from when to rebuild.

    A new event at `t` can only change sessions that ended at or after `t - 300 s` (the affected ones).
    When every new event of a pair comes after all its affected sessions, the new events can only continue
    the latest one (`extends`: the affected sessions, as segments, are all the history needed). Otherwise
    a late event lands among existing ones, and the pair's sessions are rebuilt from its events from
    `rebuild_from`, the earliest affected session start (or the first new event).

    Returns:
        (user_id, video_id, first_new, extends, rebuild_from) rows, one per pair with new events.
    """
    if "pair" not in new or "pair" not in recent:
        new, recent = with_pair_codes(new, recent)
    touched = new.groupby("pair", as_index=False).agg(
        user_id=("user_id", "first"), video_id=("video_id", "first"), first_new=("t", "min")
    )
    affected = recent.merge(touched[["pair", "first_new"]], on="pair")
    affected = affected[affected["end"] >= affected["first_new"] - GAP_US]
    summary = affected.groupby("pair", as_index=False).agg(
        earliest_affected=("start", "min"), latest_end=("end", "max")
    )
    plan = touched.merge(summary, on="pair", how="left")
    plan["extends"] = plan["latest_end"].isna() | (plan["first_new"] > plan["latest_end"])
    earliest = plan["earliest_affected"].fillna(plan["first_new"]).astype("int64")
    plan["rebuild_from"] = np.minimum(plan["first_new"].to_numpy(), earliest.to_numpy())
    return plan[[*PAIR, "pair", "first_new", "extends", "rebuild_from"]]


def with_pair_codes(new: pd.DataFrame, recent: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames with a `pair` column: one int per (user_id, video_id), the same in both, so they
    merge and group on integers instead of id strings."""
    codes = pair_codes(
        pd.concat([new["user_id"], recent["user_id"]], ignore_index=True),
        pd.concat([new["video_id"], recent["video_id"]], ignore_index=True),
    )
    return new.assign(pair=codes[: len(new)]), recent.assign(pair=codes[len(new) :])


def update_sessions(
    batch: pd.DataFrame, recent: pd.DataFrame, history: Callable[[int], pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The sessions new events change, and the old sessions that no longer exist (None when no viewer
    needed rebuilding).

    In-order events only extend a viewer's latest session, whatever its length; a late event that lands
    among a viewer's existing events makes that viewer's affected sessions rebuild from their events.

    Args:
        batch: the batch's new events (`events_frame`).
        recent: Gold sessions, at least all that ended at or after the batch's first event minus 300 s.
        history: Silver events (new ones included) at or after a time in microseconds; asked only when a
            viewer needs rebuilding.
    """
    batch, recent = with_pair_codes(batch, recent)
    plan = session_update_plan(batch, recent)
    extending = plan.loc[plan["extends"], ["pair", "first_new"]]
    # Every new event of an extending pair comes after all of the pair's affected sessions.
    affected = recent.merge(extending, on="pair")
    affected = affected[affected["end"] >= affected["first_new"] - GAP_US]
    segments = [sessions_as_segments(affected), as_segments(batch[batch["pair"].isin(extending["pair"])])]
    rebuilding = plan.loc[~plan["extends"], [*PAIR, "pair", "rebuild_from"]]
    if rebuilding.empty:
        return sessionize(pd.concat(segments, ignore_index=True)), None
    events = history(int(rebuilding["rebuild_from"].min())).merge(
        rebuilding[[*PAIR, "rebuild_from"]], on=PAIR
    )
    segments.append(as_segments(events[events["t"] >= events["rebuild_from"]]))
    sessions = sessionize(pd.concat(segments, ignore_index=True))
    # The rebuilt pairs' old sessions that no longer exist (merged or split differently) go.
    old = recent.merge(rebuilding[["pair", "rebuild_from"]], on="pair")
    old = old[old["start"] >= old["rebuild_from"]]
    gone = old.merge(sessions[[*PAIR, "start"]], on=[*PAIR, "start"], how="left", indicator=True)
    return sessions, gone[gone["_merge"] == "left_only"]
