"""The lake's writer lease (`pulse.jobs.lease`): who holds it, waiting for a dead holder, losing it.

The rules run against an in-memory store and a hand-driven clock; the last tests run them against the
real store, a Delta table committed by deltalake, with claims racing from several threads.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pulse.jobs.lease import (
    DeltaLeaseStore,
    LeaseHeldError,
    LeaseLostError,
    LeaseRecord,
    WriterLease,
    holder_of,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class MemoryStore:
    """Records in commit order, as the Delta log orders them."""

    def __init__(self) -> None:
        self.records: list[LeaseRecord] = []

    def append(self, record: LeaseRecord) -> None:
        self.records.append(record)

    def read(self, limit: int) -> list[LeaseRecord]:
        return self.records[-limit:]


def _lease(store, clock: Clock, host: str = "host-a", pid: int | None = None) -> WriterLease:
    lease = WriterLease(store, "refine", "pipeline all", clock=clock)
    lease.host = host
    if pid is not None:
        lease.pid = pid
    return lease


def _record(kind: str, holder: str, at: datetime, replaces: str | None = None) -> LeaseRecord:
    return LeaseRecord(kind, holder, "pipeline all", "h", 1, T0, at, at + TTL, replaces)


def test_holder_of_ignores_a_claim_while_another_run_holds_an_unexpired_lease() -> None:
    records = [_record("claim", "a", T0), _record("claim", "b", T0 + timedelta(seconds=5))]
    assert holder_of(records).holder == "a"


def test_holder_of_gives_an_expired_lease_to_the_next_claim_and_ignores_the_old_holders_renewal() -> None:
    records = [
        _record("claim", "a", T0),
        _record("claim", "b", T0 + TTL),
        _record("renew", "a", T0 + TTL + timedelta(seconds=1)),
    ]
    assert holder_of(records).holder == "b"


def test_holder_of_frees_a_released_lease_and_lets_a_takeover_replace_exactly_the_holder_it_names() -> None:
    assert holder_of([_record("claim", "a", T0), _record("release", "a", T0)]) is None
    taken = [_record("claim", "a", T0), _record("claim", "b", T0, replaces="a")]
    assert holder_of(taken).holder == "b"
    stale_takeover = [*taken, _record("claim", "c", T0, replaces="a")]
    assert holder_of(stale_takeover).holder == "b"


def test_a_second_run_is_refused_at_once_while_the_holder_renews() -> None:
    store, clock = MemoryStore(), Clock()
    first = _lease(store, clock)
    first.acquire()
    clock.sleep(3)
    second = _lease(store, clock)
    with pytest.raises(LeaseHeldError, match=r"already written by `pulse pipeline all` \(pid"):
        second.acquire(sleep=clock.sleep)
    assert clock.now == T0 + timedelta(seconds=3), "refused without waiting"


def test_a_lease_no_longer_renewed_by_another_host_is_waited_for_then_taken() -> None:
    store, clock = MemoryStore(), Clock()
    _lease(store, clock, host="host-b").acquire()
    clock.sleep(25)  # the holder stopped renewing 25 s ago (killed without releasing)
    second = _lease(store, clock)
    second.acquire(sleep=clock.sleep)
    assert clock.now >= T0 + TTL, "taken only once the lease expired"
    assert clock.now < T0 + TTL + timedelta(seconds=2)
    assert holder_of(store.records).holder == second.token


def test_a_holder_that_renews_while_a_second_run_waits_refuses_the_second_run() -> None:
    store, clock = MemoryStore(), Clock()
    first = _lease(store, clock, host="host-b")
    first.acquire()
    clock.sleep(25)
    second = _lease(store, clock)

    def sleep_then_holder_renews(seconds: float) -> None:
        clock.sleep(seconds)
        first.renew()

    with pytest.raises(LeaseHeldError, match="already written by"):
        second.acquire(sleep=sleep_then_holder_renews)


def test_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    store, clock = MemoryStore(), Clock()
    _lease(store, clock, pid=int(dead.stdout)).acquire()
    clock.sleep(1)
    second = _lease(store, clock)
    second.acquire(sleep=clock.sleep)
    assert clock.now == T0 + timedelta(seconds=1)
    assert store.records[-1].replaces == store.records[0].holder


def test_a_stalled_holder_renews_before_it_commits_and_stops_when_it_cannot() -> None:
    store, clock = MemoryStore(), Clock()
    first = _lease(store, clock, host="host-b")
    first.acquire()
    clock.sleep(40)  # the renewal thread was starved past the lease's end; nobody claimed it meanwhile
    first.check()
    assert store.records[-1].kind == "renew"
    assert holder_of(store.records).holder == first.token

    def refuse(record: LeaseRecord) -> None:
        raise OSError("storage unreachable")

    store.append = refuse  # type: ignore[method-assign]
    clock.sleep(40)
    with pytest.raises(LeaseLostError, match="could not be renewed in time"):
        first.check()


def test_a_run_whose_lease_was_taken_over_stops_before_its_next_commit() -> None:
    store, clock = MemoryStore(), Clock()
    first = _lease(store, clock, host="host-b")
    first.acquire()
    clock.sleep(40)  # the holder stalled past its lease (a long GC pause, a lost network)
    second = _lease(store, clock)
    second.acquire(sleep=clock.sleep)
    with pytest.raises(LeaseLostError, match="taken over by `pulse pipeline all`"):
        first.check()
    second.check()


def test_a_released_lease_lets_the_next_run_start_at_once() -> None:
    store, clock = MemoryStore(), Clock()
    first = _lease(store, clock, host="host-b")
    first.acquire()
    first.release()
    second = _lease(store, clock)
    second.acquire(sleep=clock.sleep)
    assert clock.now == T0


def test_racing_claims_on_a_delta_table_leave_exactly_one_holder(tmp_path: Path) -> None:
    """Eight runs claim a free lease at the same instant; the Delta log orders their commits, and every
    one of them reaches the same verdict."""
    path = str(tmp_path / "_leases" / "refine")
    leases = [WriterLease(DeltaLeaseStore(path), "refine", "pipeline all") for _ in range(8)]
    for number, lease in enumerate(leases):
        lease.host = f"host-{number}"  # eight machines: none takes another's lease for a dead process
    outcomes: dict[str, str] = {}
    start = threading.Barrier(len(leases))

    def claim(lease: WriterLease) -> None:
        start.wait()
        try:
            lease.acquire()
            outcomes[lease.token] = "holds"
        except LeaseHeldError as exc:
            outcomes[lease.token] = str(exc)

    threads = [threading.Thread(target=claim, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    winners = [token for token, outcome in outcomes.items() if outcome == "holds"]
    assert len(outcomes) == len(leases)
    assert len(winners) == 1, outcomes
    assert holder_of(DeltaLeaseStore(path).read(64)).holder == winners[0]


def test_the_delta_store_reads_back_what_it_committed_in_order(tmp_path: Path) -> None:
    store = DeltaLeaseStore(str(tmp_path / "lease"))
    assert store.read(10) == []
    records = [_record("claim", "a", T0), _record("renew", "a", T0 + timedelta(seconds=10))]
    for record in records:
        store.append(record)
    assert store.read(10) == records
    assert store.read(1) == records[-1:]
