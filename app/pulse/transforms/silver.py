"""Silver: parse Bronze with the event contract, quarantine what breaks it, and dedupe by event_id."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from pulse.tables import SILVER_EVENTS, SILVER_QUARANTINE, raw_event_schema
from pulse_core.contract import (
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    MAX_ID_LENGTH,
    MAX_PAYLOAD_LENGTH,
    REQUIRED_FIELDS,
)

# ISO-8601 date-time: date, `T` (or a space), time with optional seconds and fraction, optional zone.
ISO_8601 = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$"


# The field `from_json` fills with a value it cannot parse (Spark leaves it out of the fields it parses, so
# an event cannot set it).
UNPARSABLE = "_unparsable"
# A JSON text whose first token opens an object (JSON's whitespace is a subset of Java's `\s`).
OPENS_OBJECT = r"^\s*\{"


def parse_events(bronze: DataFrame) -> DataFrame:
    """Bronze rows with the contract fields parsed out (as strings) and the event time normalised to UTC.

    Bronze's value is bytes; a value that is not UTF-8 is never decoded, and is quarantined. The JSON is
    parsed once: a value is an object when `from_json` parsed it whole (its `UNPARSABLE` field is empty)
    and its first token opens an object, which tells `{…}` from the arrays, strings, numbers and literals
    a struct schema would also take (one pass, not two: docs/pipeline.md, "Silver").
    """
    value = F.col("value").cast("string")
    schema = raw_event_schema().add(UNPARSABLE, StringType())
    # NaN and Infinity are not JSON: `from_json` reads them unless told not to.
    options = {
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": UNPARSABLE,
        "allowNonNumericNumbers": "false",
    }
    parsed = F.when(F.is_valid_utf8(value), F.from_json(value, schema, options))
    is_object = (
        F.col("_parsed").isNotNull() & F.col(f"_parsed.{UNPARSABLE}").isNull() & value.rlike(OPENS_OBJECT)
    )
    timestamp = F.col("_raw.timestamp")
    return (
        bronze.withColumn("_parsed", parsed)
        .withColumn("_is_object", F.coalesce(is_object, F.lit(False)))
        .withColumn("_raw", F.when(F.col("_is_object"), F.col("_parsed")))
        .drop("_parsed")
        .withColumn(
            "_event_time",
            F.when(F.trim(timestamp).rlike(ISO_8601), F.expr("try_cast(trim(_raw.timestamp) AS TIMESTAMP)")),
        )
    )


def quarantine_reason() -> Column:
    """Why a parsed row breaks the contract (the first rule it breaks), or null when it is a valid event."""
    raw = {name: F.col(f"_raw.{name}") for name in ("timestamp", "event", "user_id", "video_id", "payload")}
    bad_id = F.lit(False)
    for name in ("user_id", "video_id"):
        bad_id = bad_id | (F.length(F.trim(raw[name])) == 0) | (F.length(raw[name]) > MAX_ID_LENGTH)
    latest_allowed = F.col("ingested_at") + F.expr(
        f"INTERVAL {int(FUTURE_TOLERANCE.total_seconds())} SECONDS"
    )
    rules: list[tuple[Column, str]] = [(~F.col("_is_object"), "malformed_json")]
    rules += [(raw[name].isNull(), f"missing_field:{name}") for name in REQUIRED_FIELDS]
    rules += [
        (F.col("_event_time").isNull(), "bad_timestamp"),
        (~raw["event"].isin(*EVENT_TYPES), "unknown_event"),
        (bad_id, "bad_id"),
        (
            (raw["event"] == "message") & F.coalesce(F.length(F.trim(raw["payload"])) == 0, F.lit(True)),
            "empty_message",
        ),
        (F.coalesce(F.length(raw["payload"]) > MAX_PAYLOAD_LENGTH, F.lit(False)), "payload_too_large"),
        (F.col("_event_time") > latest_allowed, "future_timestamp"),
    ]
    reason = F.when(rules[0][0], F.lit(rules[0][1]))
    for condition, code in rules[1:]:
        reason = reason.when(condition, F.lit(code))
    return reason


def derived_event_id() -> Column:
    """The event's id: the one it was sent with, else a hash of its content, so resends of it dedupe.

    The hash covers (timestamp normalised to UTC, event, user_id, video_id, payload) as a JSON array,
    which keeps a missing payload distinct from an empty one.
    """
    normalised_time = F.date_format("_event_time", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'")
    content = F.to_json(
        F.array(
            normalised_time,
            F.col("_raw.event"),
            F.col("_raw.user_id"),
            F.col("_raw.video_id"),
            F.col("_raw.payload"),
        )
    )
    given = F.col("_raw.event_id")
    return F.when(F.length(F.trim(given)) > 0, given).otherwise(F.sha2(content, 256))


def check_events(bronze: DataFrame) -> DataFrame:
    """Bronze rows, parsed, each with `_reason`: why it breaks the contract, or null for a valid event."""
    return parse_events(bronze).withColumn("_reason", quarantine_reason())


def validate(bronze: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split Bronze rows into (valid Silver events, rejected rows with their reason code).

    Every input row lands in exactly one of the two.
    """
    return split_checked(check_events(bronze))


def _valid_named() -> list[tuple[str, Column]]:
    return [
        ("event_id", derived_event_id()),
        ("event_time", F.col("_event_time")),
        ("event", F.col("_raw.event")),
        ("user_id", F.col("_raw.user_id")),
        ("video_id", F.col("_raw.video_id")),
        ("payload", F.col("_raw.payload")),
        ("kafka_partition", F.col("partition")),
        ("kafka_offset", F.col("offset")),
        ("ingested_at", F.col("ingested_at")),
    ]


def _rejected_named() -> list[tuple[str, Column]]:
    return [
        # A readable copy (invalid UTF-8 replaced by U+FFFD) that any tool can open, and the exact bytes.
        ("value", F.make_valid_utf8(F.col("value").cast("string"))),
        ("raw_value", F.col("value").cast("binary")),
        ("reason", F.col("_reason")),
        ("kafka_partition", F.col("partition")),
        ("kafka_offset", F.col("offset")),
        ("ingested_at", F.col("ingested_at")),
    ]


def split_checked(checked: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split checked rows (see `check_events`) into (valid Silver events, rejected rows with their reason)."""
    valid = checked.where(F.col("_reason").isNull())
    rejected = checked.where(F.col("_reason").isNotNull())
    return (
        valid.select(*[column.alias(name) for name, column in _valid_named()]),
        rejected.select(*[column.alias(name) for name, column in _rejected_named()]),
    )


BRONZE_PREFIX = "bronze_"


def checked_rows(
    checked: DataFrame, bronze_columns: tuple[str, ...] = (), extra: tuple[Column, ...] = ()
) -> DataFrame:
    """Checked rows (see `check_events`) with the Silver and the quarantine columns side by side, so one
    Spark job brings a whole micro-batch to the driver; `split_checked_rows` splits it as `split_checked`
    does.

    Silver's own columns are null on rejected rows, and the quarantine's on valid ones. `bronze_columns`
    come along too, named with `BRONZE_PREFIX`, for a Bronze append from the driver, and `extra` columns
    after them (the keyed engine's changes, which share the batch).
    """
    is_valid = F.col("_reason").isNull()
    shared = ("kafka_partition", "kafka_offset", "ingested_at")
    silver = [F.when(is_valid, column).alias(name) for name, column in _valid_named() if name not in shared]
    quarantine = [
        (column if name in (*shared, "reason") else F.when(~is_valid, column)).alias(name)
        for name, column in _rejected_named()
    ]
    bronze = [F.col(name).alias(BRONZE_PREFIX + name) for name in bronze_columns]
    return checked.select(*silver, *quarantine, *bronze, *extra)


def split_checked_rows(rows: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split `checked_rows` brought to the driver into (valid Silver events, rejected rows)."""
    valid = rows.select([field.name for field in SILVER_EVENTS])
    quarantined = rows.select([field.name for field in SILVER_QUARANTINE])
    if rows["reason"].null_count == rows.num_rows:
        return valid, quarantined.slice(0, 0)  # no rejected record: nothing is copied
    rejected = pc.is_valid(rows["reason"])
    return valid.filter(pc.invert(rejected)), quarantined.filter(rejected)


def unseen_events(unique: DataFrame, silver: DataFrame) -> DataFrame:
    """The batch's events that Silver does not hold yet from an earlier Kafka record.

    A Silver row with the same event_id *and* the same Kafka coordinates is this very record, written by
    an earlier attempt at the same batch, so a replayed batch yields the same events every time.

    Args:
        unique: one row per event_id (see `first_per_event_id`).
        silver: Silver rows that can hold a copy: at least those in the batch's event-time range.
    """
    earlier = silver.select(
        F.col("event_id").alias("_id"),
        F.col("kafka_partition").alias("_p"),
        F.col("kafka_offset").alias("_o"),
    )
    same_id_elsewhere = (unique["event_id"] == earlier["_id"]) & (
        (unique["kafka_partition"] != earlier["_p"]) | (unique["kafka_offset"] != earlier["_o"])
    )
    return unique.join(earlier, same_id_elsewhere, "left_anti")


def absent_events(unique: DataFrame, silver: DataFrame) -> DataFrame:
    """The batch's events whose event_id Silver does not hold at all: the rows a Silver append adds, so
    the table keeps one row per event_id whichever run reads a Kafka record (`silver` as in
    `unseen_events`)."""
    return unique.join(silver.select("event_id"), "event_id", "left_anti")


def first_per_event_id(events: DataFrame) -> DataFrame:
    """One row per event_id: the first one by (Kafka partition, offset) wins, later copies are duplicates."""
    order = Window.partitionBy("event_id").orderBy("kafka_partition", "kafka_offset")
    return events.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")
