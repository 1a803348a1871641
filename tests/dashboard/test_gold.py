"""The Gold readers on real Delta tables: pushdown, freshness and the documented problems."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pulse_dashboard.gold import GoldProblem, GoldTable, list_videos, newest_value, read_gold
from testkit.gold_fixture import GOLD_SCHEMAS, write_gold_fixture
from tests.dashboard.conftest import NOW


def table(lake: Path | str, name: str) -> GoldTable:
    return GoldTable(name, f"{lake}/gold/{name}", {})


def test_reads_only_the_rows_in_range_and_videos(gold_lake: object, gold_tables: dict) -> None:
    lake = gold_lake.lake_root  # type: ignore[attr-defined]
    start = gold_lake.last_window - timedelta(minutes=30)  # type: ignore[attr-defined]
    end = gold_lake.last_window  # type: ignore[attr-defined]
    frame = read_gold(table(lake, "video_activity"), start=start, end=end, videos=["video_01", "video_03"])
    expected = gold_tables["video_activity"]
    expected = expected[
        (expected["window_start"] >= start)
        & (expected["window_start"] < end)
        & expected["video_id"].isin(["video_01", "video_03"])
    ]
    assert len(frame) == len(expected) == 60
    assert frame["concurrent_viewers"].sum() == expected["concurrent_viewers"].sum()
    assert str(frame["window_start"].dtype) == "datetime64[us, UTC]"


def test_sessions_are_kept_when_they_overlap_the_range(gold_lake: object, gold_tables: dict) -> None:
    lake = gold_lake.lake_root  # type: ignore[attr-defined]
    start = gold_lake.last_window - timedelta(minutes=10)  # type: ignore[attr-defined]
    end = start + timedelta(minutes=5)
    frame = read_gold(table(lake, "user_sessions"), start=start, end=end)
    sessions = gold_tables["user_sessions"]
    overlapping = sessions[(sessions["session_end"] >= start) & (sessions["session_start"] < end)]
    assert len(frame) == len(overlapping) > 0


def test_time_filter_skips_files_outside_the_range(dashboard_env: Path) -> None:
    fixture = write_gold_fixture(str(dashboard_env), now=NOW, hours=3, videos=3, tables=("video_activity",))
    gold = table(dashboard_env, "video_activity")
    actions = pa.table(DeltaTable(gold.uri).get_add_actions(flatten=True)).to_pandas()
    cutoff = fixture.last_window - timedelta(hours=1)
    old_files = actions[actions["max.window_start"] < cutoff]["path"]
    assert len(old_files) >= 1
    assert len(old_files) < len(actions)
    for path in old_files:  # files a range read must never open
        (Path(gold.uri) / path).write_bytes(b"not parquet")
    recent = read_gold(gold, start=cutoff, end=fixture.last_window + timedelta(minutes=1))
    assert len(recent) == 61 * 3
    with pytest.raises(GoldProblem):
        read_gold(gold)


def test_newest_value_comes_from_the_log(gold_lake: object) -> None:
    lake = gold_lake.lake_root  # type: ignore[attr-defined]
    newest = newest_value(table(lake, "video_activity"))
    assert newest == pd.Timestamp(gold_lake.last_window + timedelta(minutes=1))  # type: ignore[attr-defined]
    assert newest_value(table(lake, "user_sessions")) <= pd.Timestamp(NOW)


def test_list_videos(gold_lake: object) -> None:
    assert list_videos(table(gold_lake.lake_root, "video_activity")) == [  # type: ignore[attr-defined]
        "video_01",
        "video_02",
        "video_03",
        "video_04",
    ]


def test_missing_table_is_a_missing_problem(dashboard_env: Path) -> None:
    with pytest.raises(GoldProblem) as caught:
        read_gold(table(dashboard_env, "video_activity"))
    assert caught.value.kind == "missing"
    assert "gold/video_activity does not exist yet" in caught.value.message


def test_empty_table_is_an_empty_problem(dashboard_env: Path) -> None:
    write_gold_fixture(str(dashboard_env), now=NOW, hours=1, videos=1, empty=("video_activity",))
    gold = table(dashboard_env, "video_activity")
    assert read_gold(gold).empty
    assert list(read_gold(gold).columns) == GOLD_SCHEMAS["video_activity"].names
    with pytest.raises(GoldProblem) as caught:
        newest_value(gold)
    assert caught.value.kind == "empty"
    assert "has no rows yet" in caught.value.message


def test_gold_table_repr_hides_storage_options() -> None:
    gold = GoldTable(
        "video_activity", "az://gold/lake/gold/video_activity", {"azure_storage_sas_token": "sv=x"}
    )
    assert "sv=x" not in repr(gold)
