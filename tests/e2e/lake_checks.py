"""What the e2e tests assert about a lake: each table exact, Gold equal to the independent oracle."""

from __future__ import annotations

from pathlib import Path

from deltalake import DeltaTable

from testkit.gold_reference import differences, reference_gold


def rows(lake: Path, layer: str, table: str, columns: list[str] | None = None) -> list[dict]:
    return DeltaTable(str(lake / layer / table)).to_pyarrow_table(columns=columns).to_pylist()


def assert_silver_and_gold_exact(lake: Path, valid: int) -> None:
    """Silver holds every valid event once, and Gold equals the reference computed from it."""
    silver = rows(lake, "silver", "events")
    assert len(silver) == valid
    assert len({r["event_id"] for r in silver}) == len(silver)
    reference = reference_gold(silver)
    for table, expected in reference.items():
        assert differences(table, rows(lake, "gold", table), expected) == [], table


def assert_every_table_exact(lake: Path, delivered: int, valid: int, malformed: int) -> None:
    """Bronze holds each Kafka record once, the quarantine each malformed one once, Silver each valid
    event once, and Gold equals the oracle."""
    bronze = [
        (r["partition"], r["offset"]) for r in rows(lake, "bronze", "events_raw", ["partition", "offset"])
    ]
    assert len(set(bronze)) == len(bronze), f"Bronze holds {len(bronze) - len(set(bronze))} records twice"
    assert len(bronze) == delivered
    quarantine = [
        (r["kafka_partition"], r["kafka_offset"])
        for r in rows(lake, "silver", "quarantine", ["kafka_partition", "kafka_offset"])
    ]
    assert len(set(quarantine)) == len(quarantine), "the quarantine holds a record twice"
    assert len(quarantine) == malformed
    silver_ids = [r["event_id"] for r in rows(lake, "silver", "events", ["event_id"])]
    assert len(set(silver_ids)) == len(silver_ids), (
        f"Silver holds {len(silver_ids) - len(set(silver_ids))} event_ids twice"
    )
    assert_silver_and_gold_exact(lake, valid)
