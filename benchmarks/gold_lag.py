"""Gold's lag, sampled: how far behind the wall clock the newest event Gold reflects is, every few seconds.

`python -m benchmarks.gold_lag --lake L --seconds S [--every E]` prints one JSON object:
`{"samples": [[seconds since start, lag s], ...]}`. The lag is now minus the newest event time in the
progress record of `gold.video_activity`'s newest commit (what the dashboard's "N s behind" shows), so
it includes the time since that commit: sampled between commits, it is what a viewer would see.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from app.progress import progress_from_history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--every", type=float, default=2.0)
    args = parser.parse_args()
    began = time.monotonic()
    samples: list[list[float | None]] = []
    while time.monotonic() - began < args.seconds:
        tick = time.monotonic()
        try:
            progress = progress_from_history(DeltaTable(f"{args.lake}/gold/video_activity").history(5))
        except (TableNotFoundError, OSError):
            progress = None
        lag = progress.lag_seconds(datetime.now(UTC)) if progress else None
        samples.append([round(tick - began, 2), None if lag is None else round(lag, 2)])
        time.sleep(max(0.0, args.every - (time.monotonic() - tick)))
    print(json.dumps({"samples": samples}))


if __name__ == "__main__":
    main()
