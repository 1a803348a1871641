"""Gold's lag, sampled: how far behind the wall clock the newest event Gold reflects is, every few seconds.

`python -m benchmarks.gold_lag --lake L --seconds S [--every E] [--until-below B]` prints one JSON object:
`{"samples": [[seconds since start, lag s], ...], "caught_up": bool}`. With `--until-below` it stops early,
once three samples in a row are at most B seconds (a pipeline that has caught up with its backlog);
`caught_up` says whether that happened. The lag is now minus the newest event time in the
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

from pulse_core.progress import progress_from_history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--until-below", type=float, default=None)
    args = parser.parse_args()
    below = 0
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
        below = (
            below + 1 if lag is not None and args.until_below is not None and lag <= args.until_below else 0
        )
        if below >= 3:
            break
        time.sleep(max(0.0, args.every - (time.monotonic() - tick)))
    print(json.dumps({"samples": samples, "caught_up": below >= 3}))


if __name__ == "__main__":
    main()
