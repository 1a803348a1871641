package pulse.engine;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.KeyValueGroupedDataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.streaming.ListState;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.streaming.StatefulProcessorWithInitialState;
import org.apache.spark.sql.streaming.ExpiredTimerInfo;
import org.apache.spark.sql.streaming.TTLConfig;
import org.apache.spark.sql.streaming.TimeMode;
import org.apache.spark.sql.streaming.TimerValues;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import scala.Tuple3;
import scala.Tuple5;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Pulse's per-viewer work as a JVM keyed operator, keyed by viewer (user_id, video_id): dedupe,
 * sessions, and the viewer's change to the per-minute Gold figures. It is the per-viewer half of
 * `gold.WindowCells` and `gold.update_sessions` (app/pulse/transforms/gold.py), in Spark tasks.
 *
 * <p>Per key and micro-batch it keeps the batch's events whose ids the viewer does not hold (the
 * first by Kafka partition and offset), and emits, in the CHANGES columns:
 *
 * <ul>
 *   <li>{@code activity}: for each window the new events touch (their own and the next one), the
 *       viewer's share after the batch minus its share before it: events, messages, likes, active
 *       (any event in the window) and concurrent (present at the window's end: its latest event of
 *       the window or the one before is not a `leave`; at one instant a `leave` is latest). Summed
 *       per (video, window) over viewers and batches, exactly `gold.window_stats`.
 *   <li>{@code type}: the new events' count per (window, event type).
 *   <li>{@code session}: each session of the viewer that is new or changed (start, end, events,
 *       messages, ended by a leave), and {@code gone}: each session that no longer exists (a late
 *       event merged or split it), by its start. Applied in order, exactly `gold.sessionize` over
 *       the viewer's events: ordered by (time, leave last, event id), a new session after more than
 *       300 s of silence or after a leave.
 * </ul>
 *
 * <p>Its state is bounded by the lateness horizon. The query runs in event time, with a watermark of
 * the end of the newest event's minute minus the horizon (so it is minute-aligned). Each batch drops the
 * viewer's held events from before the window preceding the watermark's (the floor): a window at or
 * after the watermark's needs only those after it. The sessions they belonged to that a later event
 * could still extend or merge (ending within 300 s of the floor) are kept as summary segments, and
 * chained with the held events as `gold.update_sessions` chains Gold's sessions with new events. An
 * event from before the watermark's window is not counted here, since the window before its own may
 * have been dropped: Spark drops it before it reaches the operator, or (after a rebuild, below) it comes
 * out as a {@code late} row (its id in `event`). The pipeline finds those events in the batch's own
 * rows, recomputes what they change from Silver, and rebuilds this state (`pulse.jobs.keyed`). A timer
 * clears a viewer who has been quiet past the horizon.
 *
 * <p>After a checkpoint reset or a rebuild, the state starts from what the tables hold ({@link
 * #changes(Dataset, Dataset, long, long, long)}): each viewer's events from a minute-aligned `floor` on,
 * and the sessions before it that a later event could still extend, as segments. Until the watermark
 * passes it, an event from before the window after `floor` comes back as late, whichever its viewer.
 *
 * <p>A copy of an event under another viewer (a reused id) is counted under that viewer too: only a
 * dedupe keyed by event_id sees it. The pipeline's driver names such copies and recounts their windows
 * from Silver, then rebuilds this state (`MedallionWriter._fold_keyed`).
 */
public final class ViewerChanges extends StatefulProcessorWithInitialState<Row, Row, Row, Row> {
  private static final long MINUTE_US = 60_000_000L;
  /** The key of a viewer's rows: its user_id and video_id. */
  public static final MapFunction<Row, String> VIEWER =
      row -> row.<String>getAs("user_id") + '\u0000' + row.<String>getAs("video_id");
  public static final StructType CHANGES = new StructType()
      .add("kind", DataTypes.StringType)
      .add("video_id", DataTypes.StringType)
      .add("user_id", DataTypes.StringType)
      .add("start", DataTypes.LongType)
      .add("end", DataTypes.LongType)
      .add("event", DataTypes.StringType)
      .add("events", DataTypes.LongType)
      .add("messages", DataTypes.LongType)
      .add("likes", DataTypes.LongType)
      .add("active", DataTypes.LongType)
      .add("concurrent", DataTypes.LongType)
      .add("leave", DataTypes.BooleanType);

  private final long gapUs;
  private final long horizonUs;
  /** Where an initial state's events begin, in µs (Long.MIN_VALUE without one). */
  private final long floorUs;
  private transient ListState<Tuple3<String, Long, String>> held;
  private transient ListState<Tuple5<Long, Long, Long, Long, Boolean>> segments;

  public ViewerChanges(long gapUs, long horizonUs, long floorUs) {
    this.gapUs = gapUs;
    this.horizonUs = horizonUs;
    this.floorUs = floorUs;
  }

  /** The key the operator groups by: the viewer. */
  public static final StructType KEY = new StructType()
      .add("user_id", DataTypes.StringType)
      .add("video_id", DataTypes.StringType);

  /**
   * The changes from parsed events (event_id, event, user_id, video_id, t in µs, partition,
   * offset), keyed by viewer; `gapUs` is the session gap and `horizonUs` the lateness horizon, in µs
   * (whole seconds). The pipeline's own query takes its checked records instead ({@link
   * #keyed(Dataset, long, int)}); this form serves the operator's tests and benchmarks.
   */
  public static Dataset<Row> changes(Dataset<Row> parsed, long gapUs, long horizonUs) {
    return changes(parsed, null, gapUs, horizonUs, Long.MIN_VALUE);
  }

  /**
   * The same, with the state of each viewer starting from `initial` (null: empty): rows of (user_id,
   * video_id, kind, event_id, event, t, start, end, events, messages, leave). An `event` row is a
   * held event (event_id, event, t); a `segment` row a summary of a session before `floorUs`
   * (start, end, events, messages, leave), where the held events begin (µs, minute-aligned).
   */
  public static Dataset<Row> changes(
      Dataset<Row> parsed, Dataset<Row> initial, long gapUs, long horizonUs, long floorUs) {
    Dataset<Row> checked = parsed
        .withColumnRenamed("partition", "kafka_partition")
        .withColumnRenamed("offset", "kafka_offset")
        .withColumn("reason", functions.lit(null).cast(DataTypes.StringType));
    int partitions = Integer.parseInt(
        parsed.sparkSession().conf().get("spark.sql.shuffle.partitions"));
    return grouped(keyed(checked, horizonUs, partitions), initial, gapUs, horizonUs, floorUs);
  }

  /**
   * Checked records as the operator and the pipeline's batch both read them: with the end of each
   * valid event's minute (`minute_end`, null on a rejected record) as the event-time watermark's
   * column, and hash-partitioned by viewer (user_id, video_id) into the operator's `partitions`.
   *
   * <p>The records need the columns the operator reads: event_id, event, user_id, video_id, t (µs),
   * kafka_partition, kafka_offset, and reason (null on a valid event). When the pipeline's batch
   * reads this same dataset beside {@link #grouped}, Spark reads and checks the micro-batch once: the
   * second use of the exchange is a reused one. The operator is grouped by the same two columns, so
   * it reads that exchange with no shuffle of its own.
   *
   * <p>The watermark runs on the end of each event's minute, so it is minute-aligned, and the rows
   * Spark drops as late (at or before it) are exactly those before the watermark's window: a subset of
   * the ones this operator counts as late itself, whichever batch's watermark Spark filters with. The
   * pipeline takes both from the batch's own rows (`pulse.jobs.keyed`). A rejected record has no
   * minute: it neither moves the watermark nor is dropped as late, and the operator skips it.
   */
  public static Dataset<Row> keyed(Dataset<Row> checked, long horizonUs, int partitions) {
    Column t = functions.col("t");
    Column minuteEnd = functions.when(functions.col("reason").isNull(),
        functions.timestamp_micros(
            t.minus(functions.pmod(t, functions.lit(MINUTE_US))).plus(functions.lit(MINUTE_US))));
    return checked
        .withColumn("minute_end", minuteEnd)
        .withWatermark("minute_end", (horizonUs / 1_000_000L) + " seconds")
        .repartition(partitions, functions.col("user_id"), functions.col("video_id"));
  }

  /**
   * The operator over {@link #keyed} records, grouped by viewer (user_id, video_id), with each
   * viewer's state starting from `initial` as in {@link #changes(Dataset, Dataset, long, long,
   * long)} (null: from the checkpoint, or empty).
   */
  public static Dataset<Row> grouped(
      Dataset<Row> keyed, Dataset<Row> initial, long gapUs, long horizonUs, long floorUs) {
    ViewerChanges processor = new ViewerChanges(gapUs, horizonUs, floorUs);
    KeyValueGroupedDataset<Row, Row> viewers = keyed
        .groupBy(functions.col("user_id"), functions.col("video_id"))
        .as(Encoders.row(KEY), Encoders.row(keyed.schema()));
    if (initial == null) {
      return viewers.transformWithState(
          processor, TimeMode.EventTime(), OutputMode.Update(), Encoders.row(CHANGES));
    }
    KeyValueGroupedDataset<Row, Row> initialViewers = initial
        .groupBy(functions.col("user_id"), functions.col("video_id"))
        .as(Encoders.row(KEY), Encoders.row(initial.schema()));
    return viewers.transformWithState(
        processor,
        TimeMode.EventTime(),
        OutputMode.Update(),
        initialViewers,
        Encoders.row(CHANGES),
        Encoders.row(initial.schema()));
  }

  @Override
  public void init(OutputMode outputMode, TimeMode timeMode) {
    held = getHandle().getListState(
        "events",
        Encoders.tuple(Encoders.STRING(), Encoders.LONG(), Encoders.STRING()),
        TTLConfig.NONE());
    segments = getHandle().getListState(
        "segments",
        Encoders.tuple(Encoders.LONG(), Encoders.LONG(), Encoders.LONG(), Encoders.LONG(),
            Encoders.BOOLEAN()),
        TTLConfig.NONE());
  }

  @Override
  public void handleInitialState(Row key, Row row, TimerValues timerValues) {
    long newest;
    if ("event".equals(row.<String>getAs("kind"))) {
      newest = row.<Long>getAs("t");
      held.appendValue(
          new Tuple3<>(row.<String>getAs("event_id"), newest, row.<String>getAs("event")));
    } else {
      newest = row.<Long>getAs("end");
      segments.appendValue(new Tuple5<>(row.<Long>getAs("start"), newest,
          row.<Long>getAs("events"), row.<Long>getAs("messages"), row.<Boolean>getAs("leave")));
    }
    // One timer a viewer, at the expiry of the newest of its rows: a viewer with segments only is
    // cleared too.
    List<Long> timers = new ArrayList<>();
    getHandle().listTimers().foreach(at -> timers.add((Long) at));
    long at = expiry(newest);
    if (timers.isEmpty() || timers.get(0) < at) {
      timers.forEach(old -> getHandle().deleteTimer(old));
      getHandle().registerTimer(at);
    }
  }

  /**
   * The time, in ms, past which a viewer whose newest event is at `newest` µs can be cleared: every
   * event below the floor, and no later event able to chain with its last session. Rounded up to the
   * minute.
   */
  private long expiry(long newest) {
    long ms = (newest + horizonUs + gapUs + 2 * MINUTE_US) / 1000L;
    return ms - Math.floorMod(ms, 60_000L) + 60_000L;
  }

  /** One event of the viewer: its id, time in µs and type. */
  private record Event(String id, long t, String kind) {
    long window() {
      return t - Math.floorMod(t, MINUTE_US);
    }

    boolean leave() {
      return "leave".equals(kind);
    }

    boolean message() {
      return "message".equals(kind);
    }
  }

  /**
   * A session, or a part of one: a held event is a one-event part; a summary segment is what is left
   * of a session whose events were dropped. `tie` and `id` order the parts at one instant.
   */
  private record Session(
      long start, long end, long events, long messages, boolean leave, boolean tie, String id) {
    static Session of(Event event) {
      return new Session(event.t(), event.t(), 1, event.message() ? 1 : 0, event.leave(),
          event.leave(), event.id());
    }

    static Session of(Tuple5<Long, Long, Long, Long, Boolean> segment) {
      return new Session(segment._1(), segment._2(), segment._3(), segment._4(), segment._5(),
          false, "");
    }

    Tuple5<Long, Long, Long, Long, Boolean> segment() {
      return new Tuple5<>(start, end, events, messages, leave);
    }

    /** The figures Gold holds, without the ordering fields. */
    List<Object> figures() {
      return List.of(start, end, events, messages, leave);
    }
  }

  /** Session order: start, a leave after the other parts of its instant, then the event id. */
  private static final Comparator<Session> SESSION_ORDER = Comparator.comparingLong(Session::start)
      .thenComparing(Session::tie)
      .thenComparing(Session::id);

  /** The viewer's share of one window: events, messages, likes, active, present at its end. */
  private static long[] share(List<Event> events, long window) {
    long[] share = new long[5];
    Event latest = null;
    for (Event event : events) {
      long at = event.window();
      if (at == window) {
        share[0] += 1;
        share[1] += event.message() ? 1 : 0;
        share[2] += "like".equals(event.kind()) ? 1 : 0;
      }
      if ((at == window || at == window - MINUTE_US)
          && (latest == null
              || event.t() > latest.t()
              || (event.t() == latest.t() && event.leave() && !latest.leave()))) {
        latest = event;
      }
    }
    share[3] = share[0] > 0 ? 1 : 0;
    share[4] = latest != null && !latest.leave() ? 1 : 0;
    return share;
  }

  /** The sessions the parts chain into (after 300 s of silence or a leave, a new one), by start. */
  private Map<Long, Session> sessions(List<Session> parts, List<Event> events) {
    List<Session> ordered = new ArrayList<>(parts);
    events.forEach(event -> ordered.add(Session.of(event)));
    ordered.sort(SESSION_ORDER);
    Map<Long, Session> out = new LinkedHashMap<>();
    Session open = null;
    for (Session part : ordered) {
      if (open != null && (part.start() - open.end() > gapUs || open.leave())) {
        out.put(open.start(), open);
        open = null;
      }
      open = open == null
          ? part
          : new Session(open.start(), Math.max(open.end(), part.end()), open.events() + part.events(),
              open.messages() + part.messages(), part.leave(), false, "");
    }
    if (open != null) {
      out.put(open.start(), open);
    }
    return out;
  }

  @Override
  public scala.collection.Iterator<Row> handleInputRows(
      Row key, scala.collection.Iterator<Row> rows, TimerValues timerValues) {
    // The checked records of the viewer's key; the rejected ones (all under a null key) are the
    // quarantine's, not the operator's.
    List<Row> batch = new ArrayList<>();
    int[] reasonAt = {-1};
    rows.foreach(row -> {
      if (reasonAt[0] < 0) {
        reasonAt[0] = row.fieldIndex("reason");
      }
      return row.isNullAt(reasonAt[0]) ? batch.add(row) : false;
    });
    List<Row> out = new ArrayList<>();
    if (batch.isEmpty()) {
      return CollectionConverters.asScala(out.iterator());
    }
    Row first = batch.get(0);
    int idAt = first.fieldIndex("event_id");
    int tAt = first.fieldIndex("t");
    int kindAt = first.fieldIndex("event");
    int partitionAt = first.fieldIndex("kafka_partition");
    int offsetAt = first.fieldIndex("kafka_offset");
    String video = first.getString(first.fieldIndex("video_id"));
    String user = first.getString(first.fieldIndex("user_id"));
    long watermark = timerValues.getCurrentWatermarkInMs() * 1000L;
    // The first window this operator counts exactly: the one before it is still held (see keep).
    long counted = watermark - Math.floorMod(watermark, MINUTE_US);
    if (floorUs != Long.MIN_VALUE) {
      counted = Math.max(counted, floorUs + MINUTE_US);
    }
    batch.sort(Comparator.<Row>comparingInt(row -> row.getInt(partitionAt))
        .thenComparingLong(row -> row.getLong(offsetAt)));
    List<Event> before = new ArrayList<>();
    Set<String> ids = new HashSet<>();
    held.get().foreach(e -> {
      before.add(new Event(e._1(), e._2(), e._3()));
      return ids.add(e._1());
    });
    List<Event> fresh = new ArrayList<>();
    for (Row row : batch) {
      long t = row.getLong(tAt);
      String id = row.getString(idAt);
      if (t < counted) {
        out.add(RowFactory.create("late", video, user, t, null, id, 0L, 0L, 0L, 0L, 0L, null));
      } else if (ids.add(id)) {
        fresh.add(new Event(id, t, row.getString(kindAt)));
      }
    }
    if (fresh.isEmpty()) {
      return CollectionConverters.asScala(out.iterator());
    }
    List<Session> parts = new ArrayList<>();
    segments.get().foreach(segment -> parts.add(Session.of(segment)));
    List<Event> after = new ArrayList<>(before);
    after.addAll(fresh);
    windowChanges(video, before, after, fresh, out);
    sessionChanges(video, user, parts, before, after, out);
    keep(parts, before, fresh, watermark);
    return CollectionConverters.asScala(out.iterator());
  }

  /**
   * Store the viewer's parts and events, less what no event at or after the watermark can need: the
   * events before the floor (the start of the window before the watermark's) become summary segments,
   * and segments ending more than 300 s before the floor go. Most batches drop nothing and only append.
   * A timer clears the viewer once it has been quiet past the horizon.
   */
  private void keep(List<Session> parts, List<Event> before, List<Event> fresh, long watermark) {
    long floor = watermark - Math.floorMod(watermark, MINUTE_US) - MINUTE_US;
    List<Event> kept = new ArrayList<>();
    List<Event> dropped = new ArrayList<>();
    for (Event event : before) {
      (event.t() >= floor ? kept : dropped).add(event);
    }
    for (Event event : fresh) {
      (event.t() >= floor ? kept : dropped).add(event);
    }
    if (!dropped.isEmpty() || parts.stream().anyMatch(part -> part.end() < floor - gapUs)) {
      List<Tuple5<Long, Long, Long, Long, Boolean>> summaries = new ArrayList<>();
      for (Session session : sessions(parts, dropped).values()) {
        if (session.end() >= floor - gapUs) {
          summaries.add(session.segment());
        }
      }
      segments.clear();
      if (!summaries.isEmpty()) {
        segments.put(summaries.toArray(new Tuple5[0]));
      }
    }
    if (dropped.isEmpty()) {
      held.appendList(stored(fresh));
    } else {
      held.clear();
      if (!kept.isEmpty()) {
        held.put(stored(kept));
      }
    }
    // One timer a viewer, registered with its first state and never moved by a batch: it fires at the
    // expiry of the newest event it knew of, and moves on from there (handleExpiredTimer). Moving it
    // whenever the newest event's minute moved cost a delete and a register in the state store per
    // viewer and minute: 14-24% of a live batch's task CPU (docs/scale.md, session 21).
    if (before.isEmpty() && parts.isEmpty()) {
      getHandle().registerTimer(expiry(fresh.stream().mapToLong(Event::t).max().getAsLong()));
    }
  }

  @SuppressWarnings("unchecked")
  private static Tuple3<String, Long, String>[] stored(List<Event> events) {
    Tuple3<String, Long, String>[] out = new Tuple3[events.size()];
    for (int i = 0; i < events.size(); i++) {
      Event event = events.get(i);
      out[i] = new Tuple3<>(event.id(), event.t(), event.kind());
    }
    return out;
  }

  @Override
  public scala.collection.Iterator<Row> handleExpiredTimer(
      Row key, TimerValues timerValues, ExpiredTimerInfo expiredTimerInfo) {
    // The viewer's newest event: held, or the end of a summary segment (the held events are newer).
    long[] newest = {Long.MIN_VALUE};
    held.get().foreach(e -> newest[0] = Math.max(newest[0], e._2()));
    segments.get().foreach(segment -> newest[0] = Math.max(newest[0], segment._2()));
    // The viewer is cleared once the watermark passes the expiry of its newest event. A timer that
    // fires before that, set when an earlier event was the newest, moves to the newest's expiry.
    long passed = Math.max(expiredTimerInfo.getExpiryTimeInMs(), timerValues.getCurrentWatermarkInMs());
    if (newest[0] == Long.MIN_VALUE || expiry(newest[0]) <= passed) {
      held.clear();
      segments.clear();
    } else {
      getHandle().registerTimer(expiry(newest[0]));
    }
    return CollectionConverters.asScala(new ArrayList<Row>().iterator());
  }

  private static void windowChanges(
      String video, List<Event> before, List<Event> after, List<Event> fresh, List<Row> out) {
    TreeSet<Long> windows = new TreeSet<>();
    Map<Long, Map<String, Long>> types = new TreeMap<>();
    for (Event event : fresh) {
      windows.add(event.window());
      windows.add(event.window() + MINUTE_US);
      types.computeIfAbsent(event.window(), w -> new TreeMap<>()).merge(event.kind(), 1L, Long::sum);
    }
    for (long window : windows) {
      long[] was = share(before, window);
      long[] is = share(after, window);
      long[] d = new long[5];
      boolean changed = false;
      for (int i = 0; i < 5; i++) {
        d[i] = is[i] - was[i];
        changed |= d[i] != 0;
      }
      if (changed) {
        out.add(RowFactory.create(
            "activity", video, null, window, null, null, d[0], d[1], d[2], d[3], d[4], null));
      }
    }
    for (Map.Entry<Long, Map<String, Long>> window : types.entrySet()) {
      for (Map.Entry<String, Long> type : window.getValue().entrySet()) {
        out.add(RowFactory.create(
            "type", video, null, window.getKey(), null, type.getKey(), type.getValue(),
            0L, 0L, 0L, 0L, null));
      }
    }
  }

  private void sessionChanges(String video, String user, List<Session> parts, List<Event> before,
      List<Event> after, List<Row> out) {
    Map<Long, Session> was = sessions(parts, before);
    Map<Long, Session> is = sessions(parts, after);
    for (Long start : was.keySet()) {
      if (!is.containsKey(start)) {
        out.add(RowFactory.create(
            "gone", video, user, start, null, null, 0L, 0L, 0L, 0L, 0L, null));
      }
    }
    for (Session session : is.values()) {
      Session old = was.get(session.start());
      if (old == null || !old.figures().equals(session.figures())) {
        out.add(RowFactory.create(
            "session", video, user, session.start(), session.end(), null, session.events(),
            session.messages(), 0L, 0L, 0L, session.leave()));
      }
    }
  }

}
