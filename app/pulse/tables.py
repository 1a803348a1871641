"""The Spark schemas of the lake's tables, derived from the catalogue (`pulse_core.catalogue`)."""

from __future__ import annotations

from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from pulse_core import catalogue
from pulse_core.catalogue import Kind, Table
from pulse_core.contract import Event

SPARK_TYPES: dict[Kind, DataType] = {
    "string": StringType(),
    "binary": BinaryType(),
    "int": IntegerType(),
    "long": LongType(),
    "double": DoubleType(),
    "boolean": BooleanType(),
    "timestamp": TimestampType(),
    "date": DateType(),
}


def spark_schema(table: Table) -> StructType:
    """A catalogue table as a Spark schema (every column nullable)."""
    return StructType([StructField(c.name, SPARK_TYPES[c.kind], nullable=True) for c in table.columns])


def raw_event_schema() -> StructType:
    """The Spark schema Silver parses raw JSON with: every contract field, as a string."""
    return StructType([StructField(name, StringType(), nullable=True) for name in Event.model_fields])


BRONZE_EVENTS_RAW = spark_schema(catalogue.BRONZE_EVENTS_RAW)
SILVER_EVENTS = spark_schema(catalogue.SILVER_EVENTS)
SILVER_QUARANTINE = spark_schema(catalogue.SILVER_QUARANTINE)
GOLD_USER_SESSIONS = spark_schema(catalogue.GOLD_USER_SESSIONS)

GOLD_TABLES: dict[str, tuple[StructType, tuple[str, ...]]] = {
    name: (spark_schema(table), table.keys) for name, table in catalogue.GOLD.items()
}
"""Gold by name: (Spark schema, MERGE keys)."""
