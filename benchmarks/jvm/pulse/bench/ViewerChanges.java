package pulse.bench;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.streaming.ListState;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.streaming.StatefulProcessor;
import org.apache.spark.sql.streaming.TTLConfig;
import org.apache.spark.sql.streaming.TimeMode;
import org.apache.spark.sql.streaming.TimerValues;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import scala.Tuple3;
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
 * <p>Not yet: dropping held events past the lateness horizon (an event-time timer, with a session
 * still open then kept as a summary), a duplicate id on another viewer (dedupe keyed by event_id
 * first), and the initial state after a checkpoint reset.
 */
public final class ViewerChanges extends StatefulProcessor<String, Row, Row> {
  private static final long MINUTE_US = 60_000_000L;
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
  private transient ListState<Tuple3<String, Long, String>> held;

  public ViewerChanges(long gapUs) {
    this.gapUs = gapUs;
  }

  /**
   * The changes from parsed events (event_id, event, user_id, video_id, t in µs, partition,
   * offset), keyed by viewer; `gapUs` is the session gap in µs.
   */
  public static Dataset<Row> changes(Dataset<Row> parsed, long gapUs) {
    MapFunction<Row, String> viewer =
        row -> row.<String>getAs("user_id") + '\u0000' + row.<String>getAs("video_id");
    return parsed
        .groupByKey(viewer, Encoders.STRING())
        .transformWithState(
            new ViewerChanges(gapUs), TimeMode.None(), OutputMode.Update(), Encoders.row(CHANGES));
  }

  @Override
  public void init(OutputMode outputMode, TimeMode timeMode) {
    held = getHandle().getListState(
        "events",
        Encoders.tuple(Encoders.STRING(), Encoders.LONG(), Encoders.STRING()),
        TTLConfig.NONE());
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

  /** Session order: time, a leave after the other events of its instant, then the event id. */
  private static final Comparator<Event> SESSION_ORDER = Comparator.comparingLong(Event::t)
      .thenComparing(Event::leave)
      .thenComparing(Event::id);

  /** A session of the viewer, as `gold.user_sessions` holds it. */
  private record Session(long start, long end, long events, long messages, boolean leave) {}

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

  /** The viewer's sessions over its events in SESSION_ORDER, by start. */
  private Map<Long, Session> sessions(List<Event> ordered) {
    Map<Long, Session> out = new LinkedHashMap<>();
    Session open = null;
    for (Event event : ordered) {
      if (open != null && (event.t() - open.end() > gapUs || open.leave())) {
        out.put(open.start(), open);
        open = null;
      }
      open = open == null
          ? new Session(event.t(), event.t(), 1, event.message() ? 1 : 0, event.leave())
          : new Session(open.start(), Math.max(open.end(), event.t()), open.events() + 1,
              open.messages() + (event.message() ? 1 : 0), event.leave());
    }
    if (open != null) {
      out.put(open.start(), open);
    }
    return out;
  }

  @Override
  public scala.collection.Iterator<Row> handleInputRows(
      String key, scala.collection.Iterator<Row> rows, TimerValues timerValues) {
    List<Row> batch = new ArrayList<>();
    rows.foreach(batch::add);
    List<Row> out = new ArrayList<>();
    if (batch.isEmpty()) {
      return CollectionConverters.asScala(out.iterator());
    }
    Row first = batch.get(0);
    int idAt = first.fieldIndex("event_id");
    int tAt = first.fieldIndex("t");
    int kindAt = first.fieldIndex("event");
    int partitionAt = first.fieldIndex("partition");
    int offsetAt = first.fieldIndex("offset");
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
      String id = row.getString(idAt);
      if (ids.add(id)) {
        fresh.add(new Event(id, row.getLong(tAt), row.getString(kindAt)));
      }
    }
    if (fresh.isEmpty()) {
      return CollectionConverters.asScala(out.iterator());
    }
    String video = first.getString(first.fieldIndex("video_id"));
    String user = first.getString(first.fieldIndex("user_id"));
    List<Event> after = new ArrayList<>(before);
    after.addAll(fresh);
    windowChanges(video, before, after, fresh, out);
    sessionChanges(video, user, before, after, out);
    @SuppressWarnings("unchecked")
    Tuple3<String, Long, String>[] appended = new Tuple3[fresh.size()];
    for (int i = 0; i < fresh.size(); i++) {
      Event event = fresh.get(i);
      appended[i] = new Tuple3<>(event.id(), event.t(), event.kind());
    }
    held.appendList(appended);
    return CollectionConverters.asScala(out.iterator());
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

  private void sessionChanges(
      String video, String user, List<Event> before, List<Event> after, List<Row> out) {
    before.sort(SESSION_ORDER);
    after.sort(SESSION_ORDER);
    Map<Long, Session> was = sessions(before);
    Map<Long, Session> is = sessions(after);
    for (Long start : was.keySet()) {
      if (!is.containsKey(start)) {
        out.add(RowFactory.create(
            "gone", video, user, start, null, null, 0L, 0L, 0L, 0L, 0L, null));
      }
    }
    for (Session session : is.values()) {
      if (!Objects.equals(was.get(session.start()), session)) {
        out.add(RowFactory.create(
            "session", video, user, session.start(), session.end(), null, session.events(),
            session.messages(), 0L, 0L, 0L, session.leave()));
      }
    }
  }
}
