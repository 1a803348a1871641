"""The numbers that define Gold (docs/pipeline.md, "What Gold means"), for the pipeline that computes
it and the dashboard that explains it.

- Windows are 1-minute tumbling windows on event time.
- A viewer is present at a window's end `T` when their latest event before `T` is not a `leave` and
  happened at or after `T - 120 s`.
- A session ends after more than 300 s of silence, or with a `leave`.
"""

from __future__ import annotations

WINDOW_S = 60
PRESENCE_S = 120
SESSION_GAP_S = 300
