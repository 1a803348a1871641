"""The sessions-commit benchmark's own check (`benchmarks.sessions_merge.measure`): every run's table is
compared with the sessions it should hold, so a commit that loses or keeps a stale row fails the run."""

from __future__ import annotations

import pytest

from benchmarks import sessions_merge
from pulse import io


def test_a_run_commits_heartbeats_and_checks_every_row() -> None:
    measured = sessions_merge.measure(audience=3000, batches=3, seed=1)
    assert measured["open_sessions"] == measured["checked_rows"] == 3000
    assert measured["changed_per_batch"] == 100
    assert measured["batches_timed"] == 2
    assert measured["merge_s"] > 0


def test_a_commit_that_keeps_the_old_session_rows_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def insert_only(path: str, rows, keys, prune, user_metadata, stale=None, storage_options=None):  # type: ignore[no-untyped-def]
        from deltalake import write_deltalake

        write_deltalake(path, rows, mode="append")  # the heartbeat's row beside the old one

    monkeypatch.setattr(io, "merge_with_delta_rs", insert_only)
    with pytest.raises(AssertionError, match="differ from the 3,000 expected"):
        sessions_merge.measure(audience=3000, batches=2, seed=1)
