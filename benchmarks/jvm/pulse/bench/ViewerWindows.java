package pulse.bench;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
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
 * Each viewer's change to the per-minute Gold figures, keyed by viewer (user_id, video_id): the
 * per-viewer half of `gold.WindowCells` (app/pulse/transforms/gold.py), in Spark tasks.
 *
 * <p>A new event changes a window only through its own viewer's share of it: events, messages,
 * likes, active (any event in the window) and present at the window's end (the viewer's latest event
 * of the window or the one before is not a `leave`; at one instant a `leave` is latest). So per key
 * and micro-batch the operator keeps the batch's events whose ids the viewer has not held (the first
 * by Kafka partition and offset), and for each window they touch (their own and the next one) emits
 * the viewer's share after the batch minus its share before it, with one row per (window, event
 * type) for the new events' counts. Summed per (video, window) over all viewers and batches, the
 * activity rows are exactly `gold.window_stats` over the distinct events.
 *
 * <p>Not yet: dropping held events past the lateness horizon (an event-time timer), a duplicate id
 * on another viewer (dedupe keyed by event_id first), and sessions.
 */
public final class ViewerWindows extends StatefulProcessor<String, Row, Row> {
  private static final long MINUTE_US = 60_000_000L;
  /** An activity row has a null `event`; an events-by-type row names the type in it. */
  public static final StructType CHANGES = new StructType()
      .add("video_id", DataTypes.StringType)
      .add("window_start", DataTypes.LongType)
      .add("event", DataTypes.StringType)
      .add("events", DataTypes.LongType)
      .add("messages", DataTypes.LongType)
      .add("likes", DataTypes.LongType)
      .add("active", DataTypes.LongType)
      .add("concurrent", DataTypes.LongType);

  private transient ListState<Tuple3<String, Long, String>> held;

  /**
   * The changes from parsed events (event_id, event, user_id, video_id, t in µs, partition,
   * offset), keyed by viewer, in the CHANGES columns.
   */
  public static Dataset<Row> changes(Dataset<Row> parsed) {
    MapFunction<Row, String> viewer =
        row -> row.<String>getAs("user_id") + '\u0000' + row.<String>getAs("video_id");
    return parsed
        .groupByKey(viewer, Encoders.STRING())
        .transformWithState(
            new ViewerWindows(), TimeMode.None(), OutputMode.Update(), Encoders.row(CHANGES));
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
  }

  /** The viewer's share of one window: events, messages, likes, active, present at its end. */
  private static long[] share(List<Event> events, long window) {
    long[] share = new long[5];
    Event latest = null;
    for (Event event : events) {
      long at = event.window();
      if (at == window) {
        share[0] += 1;
        share[1] += "message".equals(event.kind()) ? 1 : 0;
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
    List<Event> after = new ArrayList<>(before);
    after.addAll(fresh);
    TreeSet<Long> windows = new TreeSet<>();
    Map<Long, Map<String, Long>> types = new TreeMap<>();
    for (Event event : fresh) {
      windows.add(event.window());
      windows.add(event.window() + MINUTE_US);
      types.computeIfAbsent(event.window(), w -> new TreeMap<>()).merge(event.kind(), 1L, Long::sum);
    }
    String video = first.getString(first.fieldIndex("video_id"));
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
        out.add(RowFactory.create(video, window, null, d[0], d[1], d[2], d[3], d[4]));
      }
    }
    for (Map.Entry<Long, Map<String, Long>> window : types.entrySet()) {
      for (Map.Entry<String, Long> type : window.getValue().entrySet()) {
        out.add(RowFactory.create(video, window.getKey(), type.getKey(), type.getValue(), 0L, 0L, 0L, 0L));
      }
    }
    @SuppressWarnings("unchecked")
    Tuple3<String, Long, String>[] appended = new Tuple3[fresh.size()];
    for (int i = 0; i < fresh.size(); i++) {
      Event event = fresh.get(i);
      appended[i] = new Tuple3<>(event.id(), event.t(), event.kind());
    }
    held.appendList(appended);
    return CollectionConverters.asScala(out.iterator());
  }
}
