"""Gold against the plain-Python reference, read with deltalake in its own process.

`python -m benchmarks.gold_check` (PULSE_LAKE set) prints one JSON line: Silver's row count and, per
Gold table, its row count and the number of differences from `testkit.gold_reference`.
"""

from __future__ import annotations

import json
import os
import time

from deltalake import DeltaTable

from pulse_core.settings import load_settings
from testkit.gold_reference import differences, reference_gold


def main() -> None:
    settings = load_settings()
    began = time.monotonic()
    silver = DeltaTable(settings.table_path("silver", "events")).to_pyarrow_table(
        columns=["event_id", "event_time", "event", "user_id", "video_id"]
    )
    expected = reference_gold(silver.to_pylist())
    report: dict[str, object] = {"silver_rows": silver.num_rows, "tables": {}}
    for name, rows in expected.items():
        actual = DeltaTable(settings.table_path("gold", name)).to_pyarrow_table().to_pylist()
        problems = differences(name, actual, rows)
        report["tables"][name] = {  # type: ignore[index]
            "gold_rows": len(actual),
            "reference_rows": len(rows),
            "differences": len(problems),
            "first_differences": problems[:5],
        }
    report["seconds"] = round(time.monotonic() - began, 1)
    print(json.dumps(report, default=str), flush=True)


if __name__ == "__main__":
    main()
    # The report is out: skip interpreter teardown, where deltalake's runtime has aborted (SIGABRT) once.
    os._exit(0)
