package pulse.bench;

import pulse.engine.ViewerChanges;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

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
import org.apache.spark.sql.streaming.ValueState;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import scala.Tuple2;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The `jvm` shape of benchmarks/keyed_state.py: the `rows` shape's operator, written for the JVM.
 *
 * <p>Keyed by viewer (user_id, video_id). Per key and micro-batch it reads the viewer's held event ids
 * (list state), keeps the batch's new events in event-time order and appends their ids, extends the
 * viewer's session (value state: start, end in µs; a gap over GAP_US starts a new one), and emits the
 * viewer's share of each minute its new events touch: (video_id, minute, events, messages, likes, 1).
 * No Python runs per key: this is what the same work costs when Spark's own threads do it.
 */
public final class ViewerShares extends StatefulProcessor<String, Row, Row> {
  private static final long MINUTE_US = 60_000_000L;
  public static final StructType SHARES = new StructType()
      .add("video_id", DataTypes.StringType)
      .add("minute", DataTypes.LongType)
      .add("events", DataTypes.LongType)
      .add("messages", DataTypes.LongType)
      .add("likes", DataTypes.LongType)
      .add("active", DataTypes.LongType);

  /** The key of a viewer's rows: the pipeline's operator's (pulse.engine.ViewerChanges). */
  static final MapFunction<Row, String> VIEWER = ViewerChanges.VIEWER;

  private final long gapUs;
  private transient ListState<Tuple2<String, Long>> ids;
  private transient ValueState<Tuple2<Long, Long>> session;

  public ViewerShares(long gapUs) {
    this.gapUs = gapUs;
  }

  /**
   * The operator over parsed events (event_id, event, user_id, video_id, t in µs), keyed by viewer:
   * the shares, one row per (viewer, touched minute), in the SHARES columns.
   */
  public static Dataset<Row> shares(Dataset<Row> parsed, long gapUs) {
    return parsed
        .groupByKey(VIEWER, Encoders.STRING())
        .transformWithState(
            new ViewerShares(gapUs), TimeMode.None(), OutputMode.Update(), Encoders.row(SHARES));
  }

  @Override
  public void init(OutputMode outputMode, TimeMode timeMode) {
    ids = getHandle().getListState(
        "ids", Encoders.tuple(Encoders.STRING(), Encoders.LONG()), TTLConfig.NONE());
    session = getHandle().getValueState(
        "session", Encoders.tuple(Encoders.LONG(), Encoders.LONG()), TTLConfig.NONE());
  }

  @Override
  public scala.collection.Iterator<Row> handleInputRows(
      String key, scala.collection.Iterator<Row> rows, TimerValues timerValues) {
    List<Row> batch = new ArrayList<>();
    rows.foreach(batch::add);
    if (batch.isEmpty()) {
      return CollectionConverters.asScala(new ArrayList<Row>().iterator());
    }
    int idAt = batch.get(0).fieldIndex("event_id");
    int tAt = batch.get(0).fieldIndex("t");
    int kindAt = batch.get(0).fieldIndex("event");
    int videoAt = batch.get(0).fieldIndex("video_id");
    batch.sort(Comparator.comparingLong(row -> row.getLong(tAt)));
    Set<String> held = new HashSet<>();
    ids.get().foreach(id -> held.add(id._1()));
    Map<String, Row> fresh = new LinkedHashMap<>();
    for (Row row : batch) {
      String id = row.getString(idAt);
      if (!held.contains(id)) {
        fresh.putIfAbsent(id, row);
      }
    }
    if (fresh.isEmpty()) {
      return CollectionConverters.asScala(new ArrayList<Row>().iterator());
    }
    @SuppressWarnings("unchecked")
    Tuple2<String, Long>[] appended = new Tuple2[fresh.size()];
    Map<Long, long[]> cells = new LinkedHashMap<>();
    int i = 0;
    long start = -1;
    long end = -1;
    if (session.exists()) {
      start = session.get()._1();
      end = session.get()._2();
    }
    for (Row row : fresh.values()) {
      long t = row.getLong(tAt);
      appended[i++] = new Tuple2<>(row.getString(idAt), t);
      if (start < 0) {
        start = t;
        end = t;
      }
      if (t - end > gapUs) {
        start = t;
      }
      end = Math.max(end, t);
      long[] cell = cells.computeIfAbsent(t - Math.floorMod(t, MINUTE_US), m -> new long[3]);
      String kind = row.getString(kindAt);
      cell[0] += 1;
      cell[1] += "chat".equals(kind) ? 1 : 0;
      cell[2] += "like".equals(kind) ? 1 : 0;
    }
    ids.appendList(appended);
    session.update(new Tuple2<>(start, end));
    String video = batch.get(0).getString(videoAt);
    List<Row> out = new ArrayList<>(cells.size());
    for (Map.Entry<Long, long[]> cell : cells.entrySet()) {
      long[] n = cell.getValue();
      out.add(RowFactory.create(video, cell.getKey(), n[0], n[1], n[2], 1L));
    }
    return CollectionConverters.asScala(out.iterator());
  }
}
